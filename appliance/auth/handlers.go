package auth

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	qrcode "github.com/skip2/go-qrcode"
)

// Register mounts the login, setup, MFA, account, user and token routes on mux. Their
// permissions are in AdminRoutes.
func (a *Authority) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", formAction(a, readFields("user", "password", "next"), a.login, a.loggedIn))
	mux.HandleFunc("GET /login/mfa", a.mfaPage)
	mux.HandleFunc("POST /login/mfa", formAction(a, readFields("code", "next"), a.mfa, loggedInMFA))
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /setup", a.setupPage)
	mux.HandleFunc("POST /setup", formAction(a, readFields("token", "user", "password"), a.setup, back[any]("/login", http.StatusCreated)))
	mux.HandleFunc("GET /account/mfa", a.enrolPage)
	mux.HandleFunc("POST /account/mfa", formAction(a, readFields("code"), a.enrol, a.showCodes))
	mux.HandleFunc("GET /account", a.accountPage)
	mux.HandleFunc("POST /account/password", formAction(a, readFields("current", "password"), a.password, back[any]("/account", http.StatusOK)))
	mux.HandleFunc("POST /account/recovery-codes", formAction(a, anyInput, a.recoveryCodes, a.showCodes))
	mux.HandleFunc("GET /api/v1/whoami", a.whoami)
	mux.HandleFunc("GET /api/v1/tokens", a.listTokens)
	mux.HandleFunc("POST /api/v1/tokens", formAction(a, readFields("name", "role", "lifetime"), a.createToken, a.showToken))
	mux.HandleFunc("POST /api/v1/tokens/{id}/revoke", formAction(a, anyInput, a.revokeToken, back[any]("/account", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/breakglass", formAction(a, readFields("role", "reason", "duration"), a.breakGlass, back[any]("/account", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/breakglass/end", formAction(a, anyInput, a.endBreakGlass, back[any]("/account", http.StatusOK)))
	mux.HandleFunc("GET /users", a.usersPage)
	mux.HandleFunc("GET /api/v1/users", a.listUsers)
	mux.HandleFunc("POST /api/v1/users", formAction(a, readFields("name", "password", "roles"), a.createUser, back[any]("/users", http.StatusCreated)))
	mux.HandleFunc("POST /api/v1/users/{name}/roles", formAction(a, readFields("roles"), a.setRoles, back[any]("/users", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/users/{name}/disable", formAction(a, anyInput, a.disable(true), back[any]("/users", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/users/{name}/enable", formAction(a, anyInput, a.disable(false), back[any]("/users", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/users/{name}/reset-mfa", formAction(a, anyInput, a.resetMFA, back[any]("/users", http.StatusOK)))
	mux.HandleFunc("POST /api/v1/users/{name}/unlock", formAction(a, anyInput, a.unlock, back[any]("/users", http.StatusOK)))
	a.registerAppliance(mux)
}

// Page is what the auth templates get.
type Page struct {
	Me       *Principal
	Now      time.Time
	Error    string
	Next     string
	Setup    bool
	QR       template.URL // data: URL of the TOTP QR code's PNG (see qrDataURL)
	Secret   string
	Codes    []string // recovery codes, shown once
	Token    string   // a new API token, shown once
	Tokens   []Token
	Users    []User
	Roles    []Role
	MaxBreak time.Duration
	Data     any
}

func (a *Authority) render(w http.ResponseWriter, r *http.Request, code int, name string, p Page) {
	p.Me = FromContext(r.Context())
	p.Now = a.now()
	p.Roles = Roles
	p.MaxBreak = a.policy.BreakGlassMax
	if a.pages == nil {
		writeJSON(w, code, p)
		return
	}
	if code != http.StatusOK {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(code) // Render writes the body after this header
	}
	a.pages.Render(w, name, p)
}

func (a *Authority) loginPage(w http.ResponseWriter, r *http.Request) {
	if a.SetupToken() != "" {
		http.Redirect(w, r, "/setup", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "login.html", Page{Next: localPath(r.URL.Query().Get("next"))})
}

func (a *Authority) login(w http.ResponseWriter, r *http.Request, in input) (*Principal, error) {
	id, p, err := a.Login(r.Context(), in["user"], in["password"], sourceOf(r))
	if err != nil {
		code := http.StatusUnauthorized
		if err == ErrLocked {
			code = http.StatusTooManyRequests
		}
		return nil, &pageError{code, "login.html", Page{Error: err.Error(), Next: localPath(in["next"])}, err}
	}
	a.setCookie(w, id)
	return p, nil
}

// loggedIn sends a logged-in user on: to the MFA step, the enrolment, or the page asked for.
func (a *Authority) loggedIn(w http.ResponseWriter, r *http.Request, in input, p *Principal) {
	next := localPath(in["next"])
	switch {
	case p.Enrolling:
		next = "/account/mfa"
	case p.MFAPending:
		next = "/login/mfa?next=" + next
	}
	if isForm(r) {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": p.User, "mfa_pending": p.MFAPending, "enrolling": p.Enrolling, "next": next})
}

func (a *Authority) mfaPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "mfa.html", Page{Next: localPath(r.URL.Query().Get("next"))})
}

func (a *Authority) mfa(w http.ResponseWriter, r *http.Request, in input) (any, error) {
	id, err := a.VerifyMFA(r.Context(), FromContext(r.Context()), in["code"])
	if err != nil {
		return nil, &pageError{http.StatusUnauthorized, "mfa.html", Page{Error: err.Error(), Next: localPath(in["next"])}, err}
	}
	a.setCookie(w, id)
	return reply(nil, "logged in")
}

// loggedInMFA sends a browser on to the page it asked for before the second factor.
func loggedInMFA(w http.ResponseWriter, r *http.Request, in input, v any) {
	done(w, r, input{"return": localPath(in["next"])}, "/", http.StatusOK, v)
}

func (a *Authority) logout(w http.ResponseWriter, r *http.Request) {
	a.Logout(r.Context(), FromContext(r.Context()))
	a.clearCookie(w)
	if isForm(r) {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

func (a *Authority) setupPage(w http.ResponseWriter, r *http.Request) {
	if a.SetupToken() == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "setup.html", Page{Setup: true})
}

func (a *Authority) setup(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
	if err := a.Setup(r.Context(), in["token"], in["user"], in["password"], sourceOf(r)); err != nil {
		return nil, &pageError{http.StatusBadRequest, "setup.html", Page{Setup: true, Error: err.Error()}, err}
	}
	return reply(nil, "admin created; log in and enrol a second factor")
}

func (a *Authority) enrolPage(w http.ResponseWriter, r *http.Request) {
	key, err := a.BeginEnroll(FromContext(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pg := Page{Secret: key.Secret()}
	if qr, err := qrDataURL(key.URL()); err == nil {
		pg.QR = qr
	} else {
		a.log.Warn("auth: TOTP QR code not drawn; the page shows the secret only", "err", err)
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"secret": key.Secret(), "url": key.URL()})
		return
	}
	a.render(w, r, http.StatusOK, "enrol.html", pg)
}

// qrDataURL draws text as a QR code PNG and returns it as a data: URL. html/template
// refuses a data: URL given as a string in src (it writes "#ZgotmplZ"); this one is
// marked safe because it is built here, from PNG bytes and base64 only.
func qrDataURL(text string) (template.URL, error) {
	png, err := qrcode.Encode(text, qrcode.Medium, 256)
	if err != nil {
		return "", err
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)), nil
}

func (a *Authority) enrol(w http.ResponseWriter, r *http.Request, in input) ([]string, error) {
	id, codes, err := a.ConfirmEnroll(r.Context(), FromContext(r.Context()), in["code"])
	if err != nil {
		return nil, err
	}
	a.setCookie(w, id)
	return codes, nil
}

// showCodes shows new recovery codes, once.
func (a *Authority) showCodes(w http.ResponseWriter, r *http.Request, _ input, codes []string) {
	if isForm(r) {
		a.render(w, r, http.StatusOK, "enrol.html", Page{Codes: codes})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
}

func (a *Authority) accountPage(w http.ResponseWriter, r *http.Request) {
	p := FromContext(r.Context())
	toks, err := a.Tokens(r.Context(), p.User)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "account.html", Page{Tokens: toks})
}

func (a *Authority) password(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
	p := FromContext(r.Context())
	u, err := a.user(r.Context(), a.db, p.User)
	if err != nil || !verifyPassword(in["current"], u.password) {
		return nil, forbidden("the current password is wrong")
	}
	return reply(a.SetPassword(r.Context(), p, p.User, in["password"]), "password changed")
}

func (a *Authority) recoveryCodes(_ http.ResponseWriter, r *http.Request, _ input) ([]string, error) {
	return a.NewRecoveryCodes(r.Context(), FromContext(r.Context()))
}

func (a *Authority) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, FromContext(r.Context()))
}

func (a *Authority) listTokens(w http.ResponseWriter, r *http.Request) {
	p := FromContext(r.Context())
	owner := p.User
	if p.Can(UsersManage) && r.URL.Query().Get("all") != "" {
		owner = ""
	}
	toks, err := a.Tokens(r.Context(), owner)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, toks)
}

// newToken is a token just created: its secret is shown once.
type newToken struct {
	secret string
	info   Token
}

func (a *Authority) createToken(_ http.ResponseWriter, r *http.Request, in input) (newToken, error) {
	role, life, err := roleFor(in, "lifetime", "720h")
	if err != nil {
		return newToken{}, err
	}
	secret, t, err := a.CreateToken(r.Context(), FromContext(r.Context()), in["name"], role, life)
	return newToken{secret, t}, err
}

func (a *Authority) showToken(w http.ResponseWriter, r *http.Request, _ input, t newToken) {
	if isForm(r) {
		toks, _ := a.Tokens(r.Context(), t.info.Owner)
		a.render(w, r, http.StatusOK, "account.html", Page{Token: t.secret, Tokens: toks})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": t.secret, "info": t.info, "note": "shown once; only its hash is kept"})
}

// roleFor reads the "role" field and the optional duration field key (example shows
// its form in the error).
func roleFor(in input, key, example string) (Role, time.Duration, error) {
	role, err := ParseRole(in["role"])
	if err != nil {
		return role, 0, badRequest("%v", err)
	}
	var d time.Duration
	if s := in[key]; s != "" {
		if d, err = time.ParseDuration(s); err != nil {
			return role, 0, badRequest("%s: want a duration like %s", key, example)
		}
	}
	return role, d, nil
}

func (a *Authority) revokeToken(_ http.ResponseWriter, r *http.Request, _ input) (any, error) {
	return reply(a.RevokeToken(r.Context(), FromContext(r.Context()), r.PathValue("id")), "revoked")
}

func (a *Authority) breakGlass(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
	role, d, err := roleFor(in, "duration", "30m")
	if err != nil {
		return nil, err
	}
	until, err := a.BreakGlass(r.Context(), FromContext(r.Context()), role, in["reason"], d)
	if err != nil {
		return nil, err
	}
	return map[string]any{"role": role, "until": until}, nil
}

func (a *Authority) endBreakGlass(_ http.ResponseWriter, r *http.Request, _ input) (any, error) {
	return reply(a.EndBreakGlass(r.Context(), FromContext(r.Context())), "ended")
}

func (a *Authority) usersPage(w http.ResponseWriter, r *http.Request) {
	users, err := a.Users(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.render(w, r, http.StatusOK, "users.html", Page{Users: users})
}

func (a *Authority) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := a.Users(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, users)
}

func (a *Authority) createUser(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
	roles, err := ParseRoles(in["roles"])
	if err != nil {
		return nil, badRequest("roles: %v", err)
	}
	return reply(a.CreateUser(r.Context(), FromContext(r.Context()), in["name"], in["password"], roles), "created")
}

func (a *Authority) setRoles(_ http.ResponseWriter, r *http.Request, in input) (any, error) {
	roles, err := ParseRoles(in["roles"])
	if err != nil {
		return nil, badRequest("roles: %v", err)
	}
	return reply(a.SetRoles(r.Context(), FromContext(r.Context()), r.PathValue("name"), roles), "roles set")
}

func (a *Authority) disable(disabled bool) func(http.ResponseWriter, *http.Request, input) (any, error) {
	return func(_ http.ResponseWriter, r *http.Request, _ input) (any, error) {
		return reply(a.SetDisabled(r.Context(), FromContext(r.Context()), r.PathValue("name"), disabled), "ok")
	}
}

func (a *Authority) resetMFA(_ http.ResponseWriter, r *http.Request, _ input) (any, error) {
	return reply(a.ResetMFA(r.Context(), FromContext(r.Context()), r.PathValue("name")),
		"second factor removed; the user enrols again at the next login")
}

func (a *Authority) unlock(_ http.ResponseWriter, r *http.Request, _ input) (any, error) {
	return reply(a.Unlock(r.Context(), FromContext(r.Context()), r.PathValue("name")), "unlocked")
}
