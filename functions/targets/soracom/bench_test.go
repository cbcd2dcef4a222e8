package soracom_test

import (
	"context"
	"testing"

	"github.com/keyrotator/keyrotator/functions/rotation"
)

// BenchmarkRepoint250Groups is one UpdateSoracom of 250 groups against the
// sandbox's SORACOM: credentials listed, 3 pages of groups, 250 PUTs, each
// read back — what a retry after a Lambda timeout redoes at most. Each
// round moves the groups to the other key's credential and back.
func BenchmarkRepoint250Groups(b *testing.B) {
	e := setup(b, 250, "secret-right", nil)
	e.sb.Soracom.SetRatePerMinute(1 << 30) // the cost of the calls, not of SORACOM's rate limit
	ctx := context.Background()
	tg := rotation.Target{Type: "soracom", Name: "funnel", Connection: "keyrotator/connections/soracom", CredentialPrefix: "aws-funnel"}
	from, to := e.old, e.key
	b.ResetTimer()
	for range b.N {
		r, err := e.target.Update(ctx, tg, "exec", from.AccessKeyID, to)
		if err != nil || len(r.Soracom.Groups) != 250 {
			b.Fatalf("%v, %+v", err, r.Soracom)
		}
		from, to = to, from
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/250, "ms/group")
}
