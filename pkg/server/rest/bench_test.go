package rest_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"chatctl/pkg/rest"
)

// BenchmarkHugeList is one query_online_status with 100,000 To_Account
// entries (0.9 MB), refused 70206: what an over-long list costs.
func BenchmarkHugeList(b *testing.B) {
	fx := setup(b)
	var sb strings.Builder
	sb.WriteString(`{"To_Account":[`)
	for i := range 100_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"u` + strconv.Itoa(i) + `"`)
	}
	sb.WriteString(`]}`)
	body := sb.String()
	url := rest.Prefix + rest.CmdQueryOnlineStatus + "?" + fx.query("administrator").Encode()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		fx.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, url, strings.NewReader(body)))
		if !strings.Contains(rec.Body.String(), `"ErrorCode":70206`) {
			b.Fatalf("answer %s", rec.Body)
		}
	}
}
