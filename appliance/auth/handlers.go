package auth

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/http"
	"time"
)

// Register mounts the login, setup, MFA, account, user and token routes on mux. Their
// permissions are in AdminRoutes.
func (a *Authority) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /login/mfa", a.mfaPage)
	mux.HandleFunc("POST /login/mfa", a.mfa)
	mux.HandleFunc("POST /logout", a.logout)
	mux.HandleFunc("GET /setup", a.setupPage)
	mux.HandleFunc("POST /setup", a.setup)
	mux.HandleFunc("GET /account/mfa", a.enrolPage)
	mux.HandleFunc("POST /account/mfa", a.enrol)
	mux.HandleFunc("GET /account", a.accountPage)
	mux.HandleFunc("POST /account/password", a.password)
	mux.HandleFunc("POST /account/recovery-codes", a.recoveryCodes)
	mux.HandleFunc("GET /api/v1/whoami", a.whoami)
	mux.HandleFunc("GET /api/v1/tokens", a.listTokens)
	mux.HandleFunc("POST /api/v1/tokens", a.createToken)
	mux.HandleFunc("POST /api/v1/tokens/{id}/revoke", a.revokeToken)
	mux.HandleFunc("POST /api/v1/breakglass", a.breakGlass)
	mux.HandleFunc("POST /api/v1/breakglass/end", a.endBreakGlass)
	mux.HandleFunc("GET /users", a.usersPage)
	mux.HandleFunc("GET /api/v1/users", a.listUsers)
	mux.HandleFunc("POST /api/v1/users", a.createUser)
	mux.HandleFunc("POST /api/v1/users/{name}/roles", a.setRoles)
	mux.HandleFunc("POST /api/v1/users/{name}/disable", a.disable(true))
	mux.HandleFunc("POST /api/v1/users/{name}/enable", a.disable(false))
	mux.HandleFunc("POST /api/v1/users/{name}/reset-mfa", a.resetMFA)
	mux.HandleFunc("POST /api/v1/users/{name}/unlock", a.unlock)
	a.registerExceptions(mux)
	a.registerApprovals(mux)
	a.registerAppliance(mux)
}

// Page is what the auth templates get.
type Page struct {
	Me       *Principal
	Now      time.Time
	Error    string
	Next     string
	Setup    bool
	QR       string // data: URL of the TOTP QR code
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

func (a *Authority) login(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, p, err := a.Login(r.Context(), in["user"], in["password"], sourceOf(r))
	if err != nil {
		if isForm(r) {
			code := http.StatusUnauthorized
			if err == ErrLocked {
				code = http.StatusTooManyRequests
			}
			a.render(w, r, code, "login.html", Page{Error: err.Error(), Next: localPath(in["next"])})
			return
		}
		a.fail(w, r, err)
		return
	}
	a.setCookie(w, id)
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

func (a *Authority) mfa(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, err := a.VerifyMFA(r.Context(), FromContext(r.Context()), in["code"])
	if err != nil {
		if isForm(r) {
			a.render(w, r, http.StatusUnauthorized, "mfa.html", Page{Error: err.Error(), Next: localPath(in["next"])})
			return
		}
		a.fail(w, r, err)
		return
	}
	a.setCookie(w, id)
	done(w, r, input{"return": localPath(in["next"])}, "/", http.StatusOK, map[string]string{"status": "logged in"})
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

func (a *Authority) setup(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.Setup(r.Context(), in["token"], in["user"], in["password"], sourceOf(r)); err != nil {
		if isForm(r) {
			a.render(w, r, http.StatusBadRequest, "setup.html", Page{Setup: true, Error: err.Error()})
			return
		}
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/login", http.StatusCreated, map[string]string{"status": "admin created; log in and enrol a second factor"})
}

func (a *Authority) enrolPage(w http.ResponseWriter, r *http.Request) {
	key, err := a.BeginEnroll(FromContext(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	pg := Page{Secret: key.Secret()}
	if img, err := key.Image(200, 200); err == nil {
		var buf bytes.Buffer
		if png.Encode(&buf, img) == nil {
			pg.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
		}
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"secret": key.Secret(), "url": key.URL()})
		return
	}
	a.render(w, r, http.StatusOK, "enrol.html", pg)
}

func (a *Authority) enrol(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	id, codes, err := a.ConfirmEnroll(r.Context(), FromContext(r.Context()), in["code"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.setCookie(w, id)
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

func (a *Authority) password(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	p := FromContext(r.Context())
	u, err := a.user(r.Context(), a.db, p.User)
	if err != nil || !verifyPassword(in["current"], u.password) {
		a.fail(w, r, forbidden("the current password is wrong"))
		return
	}
	if err := a.SetPassword(r.Context(), p, p.User, in["password"]); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/account", http.StatusOK, map[string]string{"status": "password changed"})
}

func (a *Authority) recoveryCodes(w http.ResponseWriter, r *http.Request) {
	codes, err := a.NewRecoveryCodes(r.Context(), FromContext(r.Context()))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if isForm(r) {
		a.render(w, r, http.StatusOK, "enrol.html", Page{Codes: codes})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
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

func (a *Authority) createToken(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	role, err := ParseRole(in["role"])
	if err != nil {
		a.fail(w, r, badRequest("%v", err))
		return
	}
	var life time.Duration
	if s := in["lifetime"]; s != "" {
		if life, err = time.ParseDuration(s); err != nil {
			a.fail(w, r, badRequest("lifetime: want a duration like 720h"))
			return
		}
	}
	secret, t, err := a.CreateToken(r.Context(), FromContext(r.Context()), in["name"], role, life)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if isForm(r) {
		toks, _ := a.Tokens(r.Context(), t.Owner)
		a.render(w, r, http.StatusOK, "account.html", Page{Token: secret, Tokens: toks})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": t, "note": "shown once; only its hash is kept"})
}

func (a *Authority) revokeToken(w http.ResponseWriter, r *http.Request) {
	in, _ := readInput(r)
	if err := a.RevokeToken(r.Context(), FromContext(r.Context()), r.PathValue("id")); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/account", http.StatusOK, map[string]string{"status": "revoked"})
}

func (a *Authority) breakGlass(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	role, err := ParseRole(in["role"])
	if err != nil {
		a.fail(w, r, badRequest("%v", err))
		return
	}
	var d time.Duration
	if s := in["duration"]; s != "" {
		if d, err = time.ParseDuration(s); err != nil {
			a.fail(w, r, badRequest("duration: want a duration like 30m"))
			return
		}
	}
	until, err := a.BreakGlass(r.Context(), FromContext(r.Context()), role, in["reason"], d)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/account", http.StatusOK, map[string]any{"role": role, "until": until})
}

func (a *Authority) endBreakGlass(w http.ResponseWriter, r *http.Request) {
	in, _ := readInput(r)
	if err := a.EndBreakGlass(r.Context(), FromContext(r.Context())); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/account", http.StatusOK, map[string]string{"status": "ended"})
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

func (a *Authority) createUser(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	roles, err := ParseRoles(in["roles"])
	if err != nil {
		a.fail(w, r, badRequest("roles: %v", err))
		return
	}
	if err := a.CreateUser(r.Context(), FromContext(r.Context()), in["name"], in["password"], roles); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/users", http.StatusCreated, map[string]string{"status": "created"})
}

func (a *Authority) setRoles(w http.ResponseWriter, r *http.Request) {
	in, err := readInput(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	roles, err := ParseRoles(in["roles"])
	if err != nil {
		a.fail(w, r, badRequest("roles: %v", err))
		return
	}
	if err := a.SetRoles(r.Context(), FromContext(r.Context()), r.PathValue("name"), roles); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/users", http.StatusOK, map[string]string{"status": "roles set"})
}

func (a *Authority) disable(disabled bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		in, _ := readInput(r)
		if err := a.SetDisabled(r.Context(), FromContext(r.Context()), r.PathValue("name"), disabled); err != nil {
			a.fail(w, r, err)
			return
		}
		done(w, r, in, "/users", http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (a *Authority) resetMFA(w http.ResponseWriter, r *http.Request) {
	in, _ := readInput(r)
	if err := a.ResetMFA(r.Context(), FromContext(r.Context()), r.PathValue("name")); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/users", http.StatusOK, map[string]string{"status": "second factor removed; the user enrols again at the next login"})
}

func (a *Authority) unlock(w http.ResponseWriter, r *http.Request) {
	in, _ := readInput(r)
	if err := a.Unlock(r.Context(), FromContext(r.Context()), r.PathValue("name")); err != nil {
		a.fail(w, r, err)
		return
	}
	done(w, r, in, "/users", http.StatusOK, map[string]string{"status": "unlocked"})
}
