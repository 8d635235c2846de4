package rollout

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/patchgate/patchgate/agentapi"
)

// validFacts bounds what an agent may send (agentapi.Facts.Validate) as an ErrInvalid.
func validFacts(f agentapi.Facts) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}

// Agent is an enrolled endpoint agent.
type Agent struct {
	ID         string         `json:"id"`
	TokenID    string         `json:"token_id"`
	Hostname   string         `json:"hostname"`
	Ring       string         `json:"ring,omitempty"`
	Tags       []string       `json:"tags,omitempty"`
	Facts      agentapi.Facts `json:"facts"`
	EnrolledAt time.Time      `json:"enrolled_at"`
	LastSeen   time.Time      `json:"last_seen,omitzero"`
	LastAddr   netip.Addr     `json:"last_addr,omitzero"`
	RevokedAt  time.Time      `json:"revoked_at,omitzero"`
	secretSHA  string
}

// EnrolmentToken lets agents enrol; the secret is shown once, at creation.
type EnrolmentToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Ring      string    `json:"ring,omitempty"`
	Tags      []string  `json:"tags,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// ErrUnauthenticated: a credential or enrolment token is unknown, expired or revoked.
var ErrUnauthenticated = errors.New("unknown, expired or revoked credential")

const (
	tokenPrefix = "pge1"
	credPrefix  = "pga1"
)

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// splitSecret parses PREFIX.ID.SECRET.
func splitSecret(s, prefix string) (id, secret string, ok bool) {
	p, rest, ok1 := strings.Cut(s, ".")
	id, secret, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || p != prefix || id == "" || len(id) > 64 || secret == "" || len(secret) > 128 {
		return "", "", false
	}
	return id, secret, true
}

// CreateToken makes an enrolment token valid for ttl and maxUses enrolments; agents
// enrolled with it join ring (if not empty) with tags. The returned string is the
// token itself, shown only now.
func (e *Engine) CreateToken(ctx context.Context, actor, name, ring string, tags []string, ttl time.Duration, maxUses int) (string, EnrolmentToken, error) {
	if name == "" || len(name) > 100 {
		return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w: name must be 1-100 characters", ErrInvalid)
	}
	if ttl <= 0 || ttl > 366*24*time.Hour {
		return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w: ttl must be more than 0 and at most a year, got %s", ErrInvalid, ttl)
	}
	if maxUses < 1 || maxUses > 100000 {
		return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w: max_uses must be 1-100000, got %d", ErrInvalid, maxUses)
	}
	if len(tags) > 50 {
		return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w: at most 50 tags", ErrInvalid)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ring != "" {
		rings, err := listRings(ctx, e.db)
		if err != nil {
			return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w", err)
		}
		if RingOf(Asset{Ring: ring}, rings) != ring {
			return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w: no ring named %q", ErrInvalid, ring)
		}
	}
	now := e.clock.Now()
	t := EnrolmentToken{ID: randomHex(8), Name: name, Ring: ring, Tags: nonNil(tags), ExpiresAt: now.Add(ttl), MaxUses: maxUses, CreatedBy: actor, CreatedAt: now}
	secret := randomSecret()
	ev := &Event{Time: now, Actor: actor, Action: "token.create", Object: "token/" + t.ID, Details: map[string]string{
		"name": name, "ring": ring, "tags": strings.Join(tags, " "), "expires_at": ts(t.ExpiresAt), "max_uses": fmt.Sprint(maxUses)}}
	err := e.commit(ctx, ev, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO rollout_enrolment_tokens(id, secret_sha, name, ring, tags, expires_at, max_uses, created_by, created_at)
			VALUES(?,?,?,?,?,?,?,?,?)`, t.ID, sha(secret), t.Name, t.Ring, js(t.Tags), ts(t.ExpiresAt), t.MaxUses, actor, ts(now))
		return err
	})
	if err != nil {
		return "", EnrolmentToken{}, fmt.Errorf("rollout: token: %w", err)
	}
	return tokenPrefix + "." + t.ID + "." + secret, t, nil
}

// Tokens lists the enrolment tokens (never their secrets).
func (e *Engine) Tokens(ctx context.Context) ([]EnrolmentToken, error) {
	toks, err := queryAll(ctx, e.db, func(sc scanner) (EnrolmentToken, error) {
		var t EnrolmentToken
		var tags, exp, created, revoked string
		if err := sc.Scan(&t.ID, &t.Name, &t.Ring, &tags, &exp, &t.MaxUses, &t.Uses, &t.CreatedBy, &created, &revoked); err != nil {
			return t, err
		}
		if err := fromJS(tags, &t.Tags); err != nil {
			return t, fmt.Errorf("token %s: %w", t.ID, err)
		}
		t.ExpiresAt, t.CreatedAt, t.RevokedAt = pt(exp), pt(created), pt(revoked)
		return t, nil
	}, `SELECT id, name, ring, tags, expires_at, max_uses, uses, created_by, created_at, revoked_at
		FROM rollout_enrolment_tokens ORDER BY created_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("rollout: tokens: %w", err)
	}
	return toks, nil
}

// RevokeToken stops a token from enrolling more agents (enrolled ones stay).
func (e *Engine) RevokeToken(ctx context.Context, actor, id string) error {
	return e.revoke(ctx, actor, "token", "rollout_enrolment_tokens", id)
}

// Enroll exchanges an enrolment token for a new agent and its credential (returned
// once; only its hash is stored).
func (e *Engine) Enroll(ctx context.Context, token string, f agentapi.Facts, addr netip.Addr) (*Agent, string, error) {
	if err := validFacts(f); err != nil {
		return nil, "", fmt.Errorf("rollout: enroll: %w", err)
	}
	id, secret, ok := splitSecret(token, tokenPrefix)
	if !ok {
		return nil, "", fmt.Errorf("rollout: enroll: %w: not an enrolment token", ErrUnauthenticated)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	var t EnrolmentToken
	var hash, tags, exp, revoked string
	err := e.db.QueryRowContext(ctx, `SELECT id, secret_sha, ring, tags, expires_at, max_uses, uses, revoked_at FROM rollout_enrolment_tokens WHERE id = ?`, id).
		Scan(&t.ID, &hash, &t.Ring, &tags, &exp, &t.MaxUses, &t.Uses, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, "", fmt.Errorf("rollout: enroll: %w", ErrUnauthenticated)
	}
	if err != nil {
		return nil, "", fmt.Errorf("rollout: enroll: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(sha(secret))) != 1 || revoked != "" || !now.Before(pt(exp)) || t.Uses >= t.MaxUses {
		return nil, "", fmt.Errorf("rollout: enroll: token %s: %w", id, ErrUnauthenticated)
	}
	if err := fromJS(tags, &t.Tags); err != nil {
		return nil, "", fmt.Errorf("rollout: enroll: token %s: %w", id, err)
	}
	ag := &Agent{ID: "ag-" + randomHex(8), TokenID: t.ID, Hostname: f.Hostname, Ring: t.Ring, Tags: nonNil(t.Tags), Facts: f, EnrolledAt: now, LastSeen: now, LastAddr: addr}
	cred := randomSecret()
	ev := &Event{Time: now, Actor: "agent:" + ag.ID, Action: "agent.enroll", Object: "agent/" + ag.ID, Details: map[string]string{
		"token": t.ID, "hostname": f.Hostname, "ring": t.Ring, "addr": addrString(addr)}}
	err = e.commit(ctx, ev, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE rollout_enrolment_tokens SET uses = uses + 1 WHERE id = ?`, t.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO rollout_agents(id, secret_sha, token_id, hostname, ring, tags, facts, enrolled_at, last_seen, last_addr)
			VALUES(?,?,?,?,?,?,?,?,?,?)`, ag.ID, sha(cred), t.ID, ag.Hostname, ag.Ring, js(ag.Tags), js(f), ts(now), ts(now), addrString(addr))
		return err
	})
	if err != nil {
		return nil, "", fmt.Errorf("rollout: enroll: %w", err)
	}
	return ag, credPrefix + "." + ag.ID + "." + cred, nil
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

const agentCols = `id, secret_sha, token_id, hostname, ring, tags, facts, enrolled_at, last_seen, last_addr, revoked_at`

func scanAgent(sc scanner) (*Agent, error) {
	var ag Agent
	var tags, facts, enrolled, seen, addr, revoked string
	if err := sc.Scan(&ag.ID, &ag.secretSHA, &ag.TokenID, &ag.Hostname, &ag.Ring, &tags, &facts, &enrolled, &seen, &addr, &revoked); err != nil {
		return nil, err
	}
	if err := errors.Join(fromJS(tags, &ag.Tags), fromJS(facts, &ag.Facts)); err != nil {
		return nil, fmt.Errorf("agent %s: %w", ag.ID, err)
	}
	ag.EnrolledAt, ag.LastSeen, ag.RevokedAt = pt(enrolled), pt(seen), pt(revoked)
	ag.LastAddr, _ = netip.ParseAddr(addr)
	return &ag, nil
}

func listAgents(ctx context.Context, q querier) ([]*Agent, error) {
	return queryAll(ctx, q, scanAgent, `SELECT `+agentCols+` FROM rollout_agents ORDER BY enrolled_at`)
}

// Agents lists the enrolled agents.
func (e *Engine) Agents(ctx context.Context) ([]*Agent, error) {
	ags, err := listAgents(ctx, e.db)
	if err != nil {
		return nil, fmt.Errorf("rollout: agents: %w", err)
	}
	return ags, nil
}

// Authenticate returns the agent a credential belongs to.
func (e *Engine) Authenticate(ctx context.Context, credential string) (*Agent, error) {
	id, secret, ok := splitSecret(credential, credPrefix)
	if !ok {
		return nil, fmt.Errorf("rollout: %w", ErrUnauthenticated)
	}
	ag, err := scanAgent(e.db.QueryRowContext(ctx, `SELECT `+agentCols+` FROM rollout_agents WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("rollout: %w", ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("rollout: authenticate: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(ag.secretSHA), []byte(sha(secret))) != 1 || !ag.RevokedAt.IsZero() {
		return nil, fmt.Errorf("rollout: agent %s: %w", id, ErrUnauthenticated)
	}
	return ag, nil
}

// RevokeAgent makes an agent's credential useless; its device keeps its deployments.
func (e *Engine) RevokeAgent(ctx context.Context, actor, id string) error {
	return e.revoke(ctx, actor, "agent", "rollout_agents", id)
}

// revoke sets revoked_at of the row id of table, a kind ("token", "agent") not revoked
// yet, recorded as KIND.revoke of KIND/ID.
func (e *Engine) revoke(ctx context.Context, actor, kind, table, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.clock.Now()
	ev := &Event{Time: now, Actor: actor, Action: kind + ".revoke", Object: kind + "/" + id}
	err := e.commit(ctx, ev, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE `+table+` SET revoked_at = ? WHERE id = ? AND revoked_at = ''`, ts(now), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("rollout: revoke %s: %w", kind, err)
	}
	return nil
}

// assetOfAgent is the asset an agent runs on: the inventory's if it knows the agent,
// else the agent's own.
func (e *Engine) assetOfAgent(ctx context.Context, ag *Agent) (Asset, error) {
	a, ok, err := e.inventory().ByAgent(ctx, ag.ID)
	if err != nil {
		return Asset{}, fmt.Errorf("inventory: %w", err)
	}
	if ok {
		return withAgent(a, ag), nil
	}
	return e.agentOwnAsset(ag), nil
}

// checkIn stores an agent's facts and address, and passes them to the inventory.
func (e *Engine) checkIn(ctx context.Context, ag *Agent, f agentapi.Facts, addr netip.Addr) error {
	if err := validFacts(f); err != nil {
		return err
	}
	now := e.clock.Now()
	if _, err := e.db.ExecContext(ctx, `UPDATE rollout_agents SET hostname = ?, facts = ?, last_seen = ?, last_addr = ? WHERE id = ?`,
		f.Hostname, js(f), ts(now), addrString(addr), ag.ID); err != nil {
		return err
	}
	ag.Hostname, ag.Facts, ag.LastSeen, ag.LastAddr = f.Hostname, f, now, addr
	if fs := e.factSink(); fs != nil {
		if err := fs.AgentFacts(ctx, ag.ID, addr, f); err != nil {
			e.log.Warn("rollout: inventory did not take an agent's facts", "agent", ag.ID, "err", err)
		}
	}
	return nil
}
