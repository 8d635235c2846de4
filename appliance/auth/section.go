package auth

import (
	"net"
	"net/url"
	"time"

	"github.com/patchgate/patchgate/conf"
)

// Section is the auth section of patchgate.yaml: who may use the admin listener and how it is served.
type Section struct {
	SessionIdle     conf.Duration `yaml:"session_idle"`     // a session unused this long ends
	SessionLifetime conf.Duration `yaml:"session_lifetime"` // a session ends this long after login
	LockoutAfter    int           `yaml:"lockout_after"`    // consecutive failed logins before a lockout
	LockoutBase     conf.Duration `yaml:"lockout_base"`     // the first lockout; doubles per further failure
	LockoutMax      conf.Duration `yaml:"lockout_max"`      // the longest lockout
	BreakGlassMax   conf.Duration `yaml:"break_glass_max"`  // the longest break-glass elevation
	TokenLifetime   conf.Duration `yaml:"token_lifetime"`   // API tokens expire after this
	// LoopbackViewer lets unauthenticated requests from loopback read the status page
	// (HTML and JSON) and metrics, nothing else: for a developer's machine only.
	LoopbackViewer bool `yaml:"loopback_viewer"`
	// TrustedOrigins may make cross-origin requests (a reverse proxy's public origin).
	TrustedOrigins []string `yaml:"trusted_origins"`
	TLS            AdminTLS `yaml:"tls"`
}

// AdminTLS is how the admin listener serves HTTPS.
type AdminTLS struct {
	// Mode: self-signed (a certificate made at first start, its fingerprint logged),
	// files (cert_file and key_file, e.g. from the site's CA), or off (plain HTTP, only
	// allowed when admin.listen is a loopback address: a developer's machine).
	Mode     string   `yaml:"mode"`
	CertFile string   `yaml:"cert_file"`
	KeyFile  string   `yaml:"key_file"`
	Hosts    []string `yaml:"hosts"` // extra names/addresses for the self-signed certificate
}

// Files lists the certificate and key files of tls.mode files (relative to the working
// directory), for the loader to check.
func (a Section) Files(key string) []conf.FileRef {
	if a.TLS.Mode != "files" {
		return nil
	}
	return []conf.FileRef{{Key: key + ".tls.cert_file", Path: a.TLS.CertFile}, {Key: key + ".tls.key_file", Path: a.TLS.KeyFile}}
}

// Validate checks the auth section and how it fits adminListen (admin.listen).
func (a Section) Validate(key, adminListen string, ps *conf.Problems) {
	for _, d := range []struct {
		name     string
		v        conf.Duration
		min, max time.Duration
	}{
		{"session_idle", a.SessionIdle, time.Minute, 24 * time.Hour},
		{"session_lifetime", a.SessionLifetime, time.Minute, 7 * 24 * time.Hour},
		{"lockout_base", a.LockoutBase, time.Second, 24 * time.Hour},
		{"lockout_max", a.LockoutMax, time.Second, 7 * 24 * time.Hour},
		{"break_glass_max", a.BreakGlassMax, time.Minute, 24 * time.Hour},
		{"token_lifetime", a.TokenLifetime, time.Hour, 2 * 366 * 24 * time.Hour},
	} {
		if d.v.D() < d.min || d.v.D() > d.max {
			ps.Addf(key+"."+d.name, "must be between %s and %s, got %s", d.min, d.max, d.v.D())
		}
	}
	if a.SessionIdle > a.SessionLifetime {
		ps.Addf(key+".session_idle", "must not exceed session_lifetime (%s), got %s", a.SessionLifetime.D(), a.SessionIdle.D())
	}
	if a.LockoutAfter < 1 || a.LockoutAfter > 100 {
		ps.Addf(key+".lockout_after", "must be 1-100, got %d", a.LockoutAfter)
	}
	for i, o := range a.TrustedOrigins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" {
			ps.Addf(conf.Index(key+".trusted_origins", i), "want an origin like https://patchgate.example:9443, got %q", o)
		}
	}
	loop := adminOnLoopback(adminListen)
	switch a.TLS.Mode {
	case "self-signed":
	case "files":
		if a.TLS.CertFile == "" {
			ps.Addf(key+".tls.cert_file", "must be set with mode files")
		}
		if a.TLS.KeyFile == "" {
			ps.Addf(key+".tls.key_file", "must be set with mode files")
		}
	case "off":
		if !loop {
			ps.Addf(key+".tls.mode", "off is allowed only when admin.listen is a loopback address (a developer's machine), got admin.listen %q", adminListen)
		}
	default:
		ps.Addf(key+".tls.mode", "must be self-signed, files or off, got %q", a.TLS.Mode)
	}
	if a.LoopbackViewer && !loop {
		ps.Addf(key+".loopback_viewer", "is allowed only when admin.listen is a loopback address, got admin.listen %q", adminListen)
	}
}

func adminOnLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DefaultSection is the auth section of a config that leaves it out.
func DefaultSection() Section {
	return Section{SessionIdle: conf.Duration(15 * time.Minute), SessionLifetime: conf.Duration(12 * time.Hour), LockoutAfter: 5,
		LockoutBase: conf.Duration(time.Minute), LockoutMax: conf.Duration(time.Hour), BreakGlassMax: conf.Duration(time.Hour),
		TokenLifetime: conf.Duration(90 * 24 * time.Hour), TLS: AdminTLS{Mode: "self-signed"}}
}

// Policy is the login and session policy of section a.
func (a Section) Policy() Policy {
	return Policy{
		SessionIdle: a.SessionIdle.D(), SessionLifetime: a.SessionLifetime.D(),
		LockoutAfter: a.LockoutAfter, LockoutBase: a.LockoutBase.D(), LockoutMax: a.LockoutMax.D(),
		BreakGlassMax: a.BreakGlassMax.D(), TokenLifetime: a.TokenLifetime.D(),
		LoopbackViewer: a.LoopbackViewer, SecureCookies: a.TLS.Mode != "off", TrustedOrigins: a.TrustedOrigins,
	}
}
