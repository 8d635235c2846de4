package appliance

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/patchgate/patchgate/appliance/audit"
	"github.com/patchgate/patchgate/appliance/auth"
	"github.com/patchgate/patchgate/appliance/supply"
	"github.com/patchgate/patchgate/appliance/web"
)

// A source check that is refused is recorded as source.rejected with its reason, the
// source shows as a health problem, and the Sources page shows the refusal with its
// reason and error (issue 15).
func TestSourceRejectionIsAudited(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String() + "/tool.msi"
	l.Close()
	cfg := testConfig(t)
	cfg.Sources = supply.Section{{Name: "vendor", Kind: supply.KindURL, URL: dead, SHA256: strings.Repeat("ab", 32)}}
	sys, err := New(context.Background(), cfg, Options{Build: Build{Version: "test"}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { sys.Close() })
	var svc *supply.Service
	for _, s := range sys.services {
		if v, ok := s.(*supply.Service); ok {
			svc = v
		}
	}
	if svc == nil {
		t.Fatal("no supply service among the system's services")
	}
	if st, err := svc.Check(context.Background(), "vendor"); err != nil || st.Result != "rejected" {
		t.Fatalf("Check = %+v, %v; want rejected", st, err)
	}
	recs, err := sys.audit.Records(context.Background(), audit.Query{Action: "source.rejected"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Object != "source/vendor" || recs[0].Details["reason"] != "unreachable" || recs[0].Actor != "system:supply" {
		t.Fatalf("audit records = %+v, want one source.rejected for source/vendor, reason unreachable", recs)
	}
	pages, err := web.NewPages(sys, sys.log)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	pages.Render(rec, "status.html", sys.Status(context.Background()))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Vendor sources") {
		t.Errorf("status page = %d, want 200 with the Vendor sources panel", rec.Code)
	}
	if ps := svc.Health(); len(ps) != 1 || !strings.Contains(ps[0].Text, "source vendor:") {
		t.Errorf("Health = %+v, want one problem naming source vendor", ps)
	}
	page, err := sourcesPage(context.Background(), svc, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec = httptest.NewRecorder()
	pages.Render(rec, "sources.html", auth.Page{Data: page, Now: time.Now()})
	if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `<span class="tag bad">rejected: unreachable</span>`) || !strings.Contains(body, "get "+dead) {
		t.Errorf("Sources page = %d, want the refusal with its reason and error:\n%s", rec.Code, body)
	}
}
