package cache

import (
	"strings"
	"testing"
)

// wrkReport is wrk 4.1.0's own report, which comes before the script's line.
const wrkReport = `Running 5s test @ http://127.0.0.1:41393/repos/demo/targets/obj/4KiB
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.02ms  205.11us   5.87ms   83.12%
    Req/Sec    31.52k     1.10k   33.62k    70.00%
  156879 requests in 5.00s, 660.33MB read
Requests/sec:  31371.24
Transfer/sec:    132.05MB
`

const wrkLine = `{"pg_wrk":1,"duration_us":5000803,"requests":156879,"bytes":692402316,` +
	`"errors":{"connect":0,"read":0,"write":0,"status":0,"timeout":0},"latency_p50_us":987,"latency_p99_us":1702}`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    int64 // requests
		failed  int64
		wantErr string
	}{
		{name: "report then summary", out: wrkReport + wrkLine + "\n", want: 156879},
		{name: "summary alone, no newline", out: wrkLine, want: 156879},
		{name: "summary with CRLF and indent", out: wrkReport + "  " + wrkLine + "\r\n", want: 156879},
		{name: "status errors are data", out: strings.Replace(wrkLine, `"status":0`, `"status":12`, 1), want: 156879, failed: 12},
		{name: "no summary", out: wrkReport, wantErr: "no summary line"},
		{name: "empty", out: "", wantErr: "no summary line"},
		{name: "two summaries", out: wrkLine + "\n" + wrkLine + "\n", wantErr: "lines 1 and 2"},
		{name: "truncated", out: wrkReport + wrkLine[:60], wantErr: "line 9"},
		{name: "text after", out: wrkLine + ` {}`, wantErr: "text after the summary"},
		{name: "unknown field", out: strings.Replace(wrkLine, `"bytes"`, `"bytez"`, 1), wantErr: "unknown field"},
		{name: "other version", out: strings.Replace(wrkLine, `"pg_wrk":1`, `"pg_wrk":2`, 1), wantErr: "version 2"},
		{name: "negative", out: strings.Replace(wrkLine, `"read":0`, `"read":-1`, 1), wantErr: "negative"},
		{name: "float count", out: strings.Replace(wrkLine, `156879`, `1.5e5`, 1), wantErr: "line 1"},
		{name: "overflow", out: strings.Replace(wrkLine, `156879`, `1e30`, 1), wantErr: "line 1"},
		{name: "no time", out: strings.Replace(wrkLine, `5000803`, `0`, 1), wantErr: "no time"},
		{name: "no requests", out: strings.Replace(wrkLine, `"requests":156879`, `"requests":0`, 1), wantErr: "no request completed"},
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
			if tt.name == "report then summary" && (res.DurationUS != 5000803 || res.Bytes != 692402316 || res.LatencyP99US != 1702) {
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
