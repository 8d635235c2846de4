package cache

import (
	"strings"
	"testing"
)

// wrkReport and wrkLine are wrk 4.1.0's output (its own report, then the
// script's line) for a run against a loopback test server.
const wrkReport = `Running 1s test @ http://127.0.0.1:18931/4KiB
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.74ms    5.82ms  44.86ms   90.08%
    Req/Sec   837.60    234.06     1.23k    70.00%
  836 requests in 1.00s, 3.43MB read
Requests/sec:    833.12
Transfer/sec:      3.41MB
`

const wrkLine = `{"pg_wrk":1,"duration_us":1003462,"requests":836,"bytes":3593128,` +
	`"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},"latency_p50_us":3905,"latency_p99_us":33049}`

// wrkErrors are the lines wrk adds to its report when requests fail.
const wrkErrors = `  Socket errors: connect 0, read 2, write 0, timeout 0
  Non-2xx or 3xx responses: 12
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    int64 // requests
		failed  int64
		wantErr string
	}{
		{name: "report then summary", out: wrkReport + wrkLine + "\n", want: 836},
		{name: "summary alone, no newline", out: wrkLine, want: 836},
		{name: "summary with CRLF and indent", out: wrkReport + "  " + wrkLine + "\r\n", want: 836},
		{name: "errors are data", out: wrkReport + wrkErrors + strings.Replace(strings.Replace(wrkLine, `"status":0`, `"status":12`, 1), `"read":0`, `"read":2`, 1), want: 836, failed: 14},
		{name: "no summary", out: wrkReport, wantErr: "no summary line"},
		{name: "empty", out: "", wantErr: "no summary line"},
		{name: "two summaries", out: wrkLine + "\n" + wrkLine + "\n", wantErr: "lines 1 and 2"},
		{name: "truncated", out: wrkReport + wrkLine[:60], wantErr: "line 9"},
		{name: "summary within a line", out: "x " + wrkLine, wantErr: "no summary line"},
		{name: "text after", out: wrkLine + ` {}`, wantErr: "text after the summary"},
		{name: "unknown field", out: strings.Replace(wrkLine, `"bytes"`, `"bytez"`, 1), wantErr: "unknown field"},
		{name: "other version", out: strings.Replace(wrkLine, `"pg_wrk":1`, `"pg_wrk":2`, 1), wantErr: "version 2"},
		{name: "negative", out: strings.Replace(wrkLine, `"read":0`, `"read":-1`, 1), wantErr: "negative"},
		{name: "float count", out: strings.Replace(wrkLine, `836`, `8.5e2`, 1), wantErr: "line 1"},
		{name: "overflow", out: strings.Replace(wrkLine, `836`, `1e30`, 1), wantErr: "line 1"},
		{name: "no time", out: strings.Replace(wrkLine, `1003462`, `0`, 1), wantErr: "no time"},
		{name: "no requests", out: strings.Replace(wrkLine, `"requests":836`, `"requests":0`, 1), wantErr: "no request completed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := parseWrk([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseWrk: error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseWrk: %v", err)
			}
			if res.Requests != tt.want || res.failures() != tt.failed {
				t.Fatalf("parseWrk: %d requests, %d failed; want %d, %d", res.Requests, res.failures(), tt.want, tt.failed)
			}
			if tt.name == "report then summary" && (res.DurationUS != 1003462 || res.Bytes != 3593128 || res.LatencyP99US != 33049) {
				t.Fatalf("parseWrk: %+v", res)
			}
		})
	}
}

// FuzzParseWrk checks that parseWrk never panics and that whatever it
// accepts is a run that took time and completed requests, with no negative
// count.
func FuzzParseWrk(f *testing.F) {
	f.Add([]byte(wrkReport + wrkLine + "\n"))
	f.Add([]byte(wrkLine))
	f.Add([]byte(wrkReport))
	f.Add([]byte(wrkReport + wrkErrors + wrkLine))
	f.Add([]byte(`{"pg_wrk":1}`))
	f.Fuzz(func(t *testing.T, out []byte) {
		res, err := parseWrk(out)
		if err != nil {
			return
		}
		if res.Version != 1 || res.DurationUS <= 0 || res.Requests <= 0 || res.Bytes < 0 || res.failures() < 0 {
			t.Fatalf("parseWrk accepted %+v from %q", res, out)
		}
	})
}
