package rest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"chatctl/pkg/sig"
)

// Client calls a REST API (chatctl serve's or Tencent's) as an app
// administrator, minting the admin's UserSig for each call.
type Client struct {
	BaseURL  string // scheme://host[:port], without /v4
	SDKAppID uint64
	Admin    string
	Key      string // the app's secret key

	HTTP *http.Client     // default: a client with DefaultTimeout
	Now  func() time.Time // default time.Now
}

// sigTTL is the validity in seconds of the UserSig minted for a call.
const sigTTL = 3600

// DefaultTimeout bounds each request of a Client without its own HTTP
// client.
const DefaultTimeout = 30 * time.Second

// UnreachableError is a request that got no HTTP answer, or one that is
// not the REST API's (NotAPI: a web server that is not a chat server). Its
// text names the URL without the query, so it never holds the UserSig.
type UnreachableError struct {
	URL    string
	Err    error
	NotAPI bool
}

func (e *UnreachableError) Error() string {
	if e.NotAPI {
		return fmt.Sprintf("%s answered but is not a chat server's REST API: %v", e.URL, e.Err)
	}
	return fmt.Sprintf("cannot reach %s: %v", e.URL, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// Query is the query string of a call by admin with its usersig.
func Query(app uint64, admin, usersig string) string {
	q := url.Values{}
	q.Set("sdkappid", strconv.FormatUint(app, 10))
	q.Set("identifier", admin)
	q.Set("usersig", usersig)
	q.Set("random", strconv.FormatUint(uint64(rand.Uint32()), 10))
	q.Set("contenttype", "json")
	return q.Encode()
}

// Do posts req (marshalled to JSON) to command and decodes the answer into
// resp, which may be nil. It returns the raw answer too. A FAIL answer is an
// *Error (with the raw answer); no HTTP answer, or one that is not the
// REST API's, is an *UnreachableError.
func (c *Client) Do(ctx context.Context, command string, req, resp any) (raw []byte, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	usersig := sig.Gen(sig.Params{SDKAppID: c.SDKAppID, Key: c.Key, UserID: c.Admin, Expire: sigTTL}, now())
	endpoint := strings.TrimRight(c.BaseURL, "/") + Prefix + command
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"?"+Query(c.SDKAppID, c.Admin, usersig), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("bad REST URL %q", endpoint)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hc := *cmp.Or(c.HTTP, &http.Client{Timeout: DefaultTimeout})
	// The query holds the admin's UserSig: a redirect would hand it to
	// whatever host the answer names (from https to http too). A 3xx is
	// no REST answer: unreachable, as any other (NotAPI below).
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	hresp, err := hc.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text holds the full URL, UserSig included
		}
		return nil, &UnreachableError{URL: endpoint, Err: err}
	}
	defer hresp.Body.Close()
	raw, err = io.ReadAll(io.LimitReader(hresp.Body, MaxBody*8))
	if err != nil {
		return nil, &UnreachableError{URL: endpoint, Err: err}
	}
	var env Envelope
	if hresp.StatusCode != http.StatusOK || json.Unmarshal(raw, &env) != nil || env.ActionStatus == "" {
		// Not the API's answer: none of it is passed on (a web server's
		// own JSON is no REST answer to merge into a document).
		return nil, &UnreachableError{URL: endpoint, Err: fmt.Errorf("HTTP %d", hresp.StatusCode), NotAPI: true}
	}
	if err := env.Err(); err != nil {
		return raw, err
	}
	if resp != nil {
		if err := json.Unmarshal(raw, resp); err != nil {
			// Said in the answer's terms, not Go's types.
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) && te.Field != "" {
				return raw, fmt.Errorf("%s: bad answer: its %s is a JSON %s, not what the REST API sends", endpoint, te.Field, te.Value)
			}
			return raw, fmt.Errorf("%s: bad answer: %v", endpoint, err)
		}
	}
	return raw, nil
}
