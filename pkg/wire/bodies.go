package wire

// BackgroundReplies are the valid empty answers to the requests the SDK sends
// after login (PROTOCOL.md section 5), without the envelope. Some of them
// (black_list_get, page_get) loop forever when answered with a bare {}.
var BackgroundReplies = map[string]string{
	"profile.portrait_get_all":                          `"UserProfileItem":[]`,
	"sns.black_list_get":                                `"BlackListItem":[],"StartIndex":0,"CurruentSequence":0`,
	"recentcontact.page_get":                            `"CompleteFlag":1,"SessionItem":[],"TimeStamp":0,"StartIndex":0,"TopTimeStamp":0,"TopStartIndex":0`,
	"group_open_http_svc.get_joined_group_list":         `"GroupIdList":[],"TotalCount":0`,
	"openim.getmsg":                                     `"Cookie":"","SyncFlag":2,"MsgList":[]`,
	"sns.friend_get":                                    `"FriendNum":0,"UserDataItem":[],"NextStartIndex":0,"StandardSequence":0,"CustomSequence":0,"CompleteFlag":1`,
	"sns.group_get":                                     `"ResultItem":[]`,
	"sns.pendency_get":                                  `"PendencyItem":[],"UnreadPendencyCount":0,"StartTime":0,"CurrentSequence":0`,
	"im_sdk_config_mgr.fetch_config":                    `"uint64_version":0,"str_json_config":"","uint32_expired_time":3600`,
	"recentcontact.get_contact_group":                   ``,
	"million_group_open_http_svc.get_joined_group_list": `"GroupIdList":[],"TotalCount":0`,
	"im_sdk_config_mgr.fetch_imsdk_purchase_bitsv2":     `"str_purchase_bits":"","uint32_expired_time":3600`,
	"imopenstat.tim_web_report_v2":                      ``,
}

// BackgroundReply returns the full JSON body (OK envelope plus the empty
// answer) for a background servcmd, and whether servcmd is one.
func BackgroundReply(servcmd string) ([]byte, bool) {
	extra, ok := BackgroundReplies[servcmd]
	if !ok {
		return nil, false
	}
	b := make([]byte, 0, 64+len(extra))
	b = append(b, `{"ActionStatus":"OK","ErrorCode":0,"ErrorInfo":""`...)
	if extra != "" {
		b = append(b, ',')
		b = append(b, extra...)
	}
	return append(b, '}'), true
}
