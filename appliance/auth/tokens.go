package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/patchgate/patchgate/appliance/store"
)

// Token is an API token as listed (never its secret).
type Token struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Role      Role      `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	LastUsed  time.Time `json:"last_used,omitzero"`
	Revoked   bool      `json:"revoked"`
}

const tokenPrefix = "pgt_"

// CreateToken makes an API token for p scoped to one of p's own roles. The secret is
// returned once; only its hash is stored.
func (a *Authority) CreateToken(ctx context.Context, p *Principal, name string, role Role, lifetime time.Duration) (string, Token, error) {
	if !contains(p.Roles, role) {
		return "", Token{}, forbidden("you can only make tokens for roles you hold (%s)", joinRoles(p.Roles))
	}
	if p.Method == "token" || p.Method == methodLoopback {
		return "", Token{}, forbidden("tokens are made from a logged-in session")
	}
	if name == "" || len(name) > 64 {
		return "", Token{}, badRequest("a token needs a name of at most 64 characters")
	}
	if lifetime <= 0 || lifetime > a.policy.TokenLifetime {
		lifetime = a.policy.TokenLifetime
	}
	now := a.now()
	t := Token{ID: strings.ToLower(randomString(5)), Name: name, Owner: p.User, Role: role, CreatedAt: now, ExpiresAt: now.Add(lifetime)}
	secret := tokenPrefix + t.ID + "_" + randomString(32)
	_, err := a.audit.Apply(ctx, p.Entry("token.create", "token/"+t.ID, map[string]string{"name": name, "role": string(role), "expires": ts(t.ExpiresAt)}),
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO auth_tokens(id, name, owner, role, hash, created_at, expires_at) VALUES(?,?,?,?,?,?,?)`,
				t.ID, t.Name, t.Owner, string(role), hashSecret(secret), ts(now), ts(t.ExpiresAt))
			return err
		})
	if err != nil {
		return "", Token{}, err
	}
	return secret, t, nil
}

// Tokens lists owner's tokens (all tokens when owner is "").
func (a *Authority) Tokens(ctx context.Context, owner string) ([]Token, error) {
	tokens, err := store.Query(ctx, a.db, func(row store.Row) (Token, error) {
		var t Token
		var c, e, l, r string
		err := row.Scan(&t.ID, &t.Name, &t.Owner, &t.Role, &c, &e, &l, &r)
		t.CreatedAt, t.ExpiresAt, t.LastUsed, t.Revoked = parseTS(c), parseTS(e), parseTS(l), r != ""
		return t, err
	}, `SELECT id, name, owner, role, created_at, expires_at, last_used, revoked_at FROM auth_tokens
		WHERE ? = '' OR owner = ? ORDER BY created_at`, owner, owner)
	if err != nil {
		return nil, fmt.Errorf("auth: tokens: %w", err)
	}
	return tokens, nil
}

// RevokeToken revokes a token of p's (an admin may revoke anyone's).
func (a *Authority) RevokeToken(ctx context.Context, p *Principal, id string) error {
	_, err := a.audit.Apply(ctx, p.Entry("token.revoke", "token/"+id, nil), func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE auth_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = '' AND (owner = ? OR ?)`,
			ts(a.now()), id, p.User, p.Can(UsersManage))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &httpError{404, "no such token of yours that is not revoked"}
		}
		return nil
	})
	return err
}

var errBadToken = errors.New("unknown, expired or revoked token")

func (a *Authority) tokenPrincipal(ctx context.Context, secret, source string) (*Principal, error) {
	if !strings.HasPrefix(secret, tokenPrefix) {
		return nil, errBadToken
	}
	var t Token
	var e, r string
	err := a.db.QueryRowContext(ctx, `SELECT id, owner, role, expires_at, revoked_at FROM auth_tokens WHERE hash = ?`, hashSecret(secret)).
		Scan(&t.ID, &t.Owner, &t.Role, &e, &r)
	if err != nil || r != "" || !a.now().Before(parseTS(e)) {
		return nil, errBadToken
	}
	u, err := a.user(ctx, a.db, t.Owner)
	if err != nil || u.Disabled || !contains(u.Roles, t.Role) {
		return nil, errBadToken // the owner lost the role or the account
	}
	a.db.ExecContext(ctx, `UPDATE auth_tokens SET last_used = ? WHERE id = ?`, ts(a.now()), t.ID)
	return &Principal{User: t.Owner, Roles: []Role{t.Role}, Method: "token", Source: source, tokenID: t.ID}, nil
}
