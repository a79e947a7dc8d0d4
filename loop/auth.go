package loop

// Concurrency: authConfig and permissions are built before Start and
// never change, so any goroutine reads them (a bcrypt verify runs on a
// verifySlow goroutine). setUser runs in the client's reading context.

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evnats/evnats/router"
	"golang.org/x/crypto/bcrypt"
)

// authConfig is the server's immutable authentication setup, with the
// accounts its users log into.
type authConfig struct {
	required bool
	certMap  bool // verify_and_map: the user comes from the TLS client certificate (tlsmap.go)
	token    string
	user     string
	pass     string
	users    map[string]*userEntry // by name, every account's
	nkeys    map[string]*userEntry // by public nkey; nil when there are none (INFO then has no nonce)
	noAuth   *userEntry            // no_auth_user: who a client without credentials is
	gacc     *account              // the global account $G
	sysAcc   *account              // the system account ($SYS unless system_account names another)
	op       *operatorMode         // operator mode: users log in with JWTs; nil otherwise
	accounts map[string]*accountSpec
}

type userEntry struct {
	name  string // the user name, or the public nkey
	pass  string
	nkey  bool
	acc   *account
	perms *Permissions
	// From a user JWT: when it expires (zero: never) and its limits
	// (0: the server's).
	expires    time.Time
	maxSubs    int
	maxPayload int
	// nameTag and accTag are the user JWT's and account JWT's names
	// ($SYS.REQ.USER.INFO's user_name and account_name).
	nameTag, accTag string
}

// newAuthConfig checks o's authorization and accounts. prev is the setup
// in force (nil at start): accounts it has keep their *account.
func newAuthConfig(o *Options, prev *authConfig, gacc *account) (*authConfig, error) {
	a := &authConfig{required: o.authRequired(), token: o.Token, user: o.Username, pass: o.Password, gacc: gacc}
	n := 0
	accUsers := false
	for _, ac := range o.Accounts {
		accUsers = accUsers || len(ac.Users) > 0
	}
	for _, set := range []bool{o.Token != "", o.Username != "", len(o.Users) > 0 || accUsers} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("loop: configure only one of token, user/password or users")
	}
	var prevAcc map[string]*accountSpec
	if prev != nil {
		prevAcc = prev.accounts
	}
	op, jwtAccs, err := loadOperator(o)
	if err != nil {
		return nil, err
	}
	if op != nil {
		a.op, a.required = op, true
		oc := *o
		oc.Accounts = append(append([]*Account(nil), o.Accounts...), jwtAccs...)
		o = &oc
	}
	if a.accounts, err = buildAccounts(o, prevAcc, gacc); err != nil {
		return nil, err
	}
	sys := o.SystemAccount
	if sys == "" {
		sys = defaultSystemAccount
	}
	a.sysAcc = a.accounts[sys].acc
	if o.TLS != nil && o.TLS.VerifyAndMap {
		if len(o.Users) == 0 {
			return nil, errors.New("loop: tls verify_and_map needs a users list to map certificates to")
		}
		a.certMap = true
	}
	if o.Username != "" && o.Password == "" {
		return nil, errors.New("loop: user without password")
	}
	add := func(u *User, acc *account) error {
		if u.Nkey != "" {
			if u.Username != "" || u.Password != "" {
				return fmt.Errorf("loop: nkey user %q with a user name or password", u.Nkey)
			}
			if !validUserNkey(u.Nkey) {
				return fmt.Errorf("loop: not a valid public user nkey: %q", u.Nkey)
			}
			if _, dup := a.nkeys[u.Nkey]; dup {
				return fmt.Errorf("loop: duplicate nkey %q", u.Nkey)
			}
			if err := validatePerms(u.Permissions); err != nil {
				return fmt.Errorf("loop: nkey %q: %w", u.Nkey, err)
			}
			if a.nkeys == nil {
				a.nkeys = make(map[string]*userEntry)
			}
			a.nkeys[u.Nkey] = &userEntry{name: u.Nkey, nkey: true, acc: acc, perms: u.Permissions}
			return nil
		}
		if u.Username == "" {
			return errors.New("loop: users entry without user name")
		}
		if _, dup := a.users[u.Username]; dup {
			return fmt.Errorf("loop: duplicate user %q", u.Username)
		}
		if err := validatePerms(u.Permissions); err != nil {
			return fmt.Errorf("loop: user %q: %w", u.Username, err)
		}
		if a.users == nil {
			a.users = make(map[string]*userEntry)
		}
		a.users[u.Username] = &userEntry{name: u.Username, pass: u.Password, acc: acc, perms: u.Permissions}
		return nil
	}
	for _, u := range o.Users {
		if err := add(u, gacc); err != nil {
			return nil, err
		}
	}
	for _, ac := range o.Accounts {
		for _, u := range ac.Users {
			if err := add(u, a.accounts[ac.Name].acc); err != nil {
				return nil, err
			}
		}
	}
	if o.NoAuthUser != "" {
		if a.noAuth = a.users[o.NoAuthUser]; a.noAuth == nil {
			// nats-server's text
			return nil, fmt.Errorf("no_auth_user: %q not present as user or nkey in authorization block or account configuration", o.NoAuthUser)
		}
	}
	return a, nil
}

func validatePerms(p *Permissions) error {
	if p == nil {
		return nil
	}
	for _, sp := range []*SubjectPermission{p.Publish, p.Subscribe} {
		if sp == nil {
			continue
		}
		for _, s := range append(append([]string(nil), sp.Allow...), sp.Deny...) {
			subj, _, _ := strings.Cut(s, " ") // subscribe entries may name a queue
			if !router.ValidSubject(subj) {
				return fmt.Errorf("invalid permission subject %q", s)
			}
		}
	}
	return nil
}

// verify checks CONNECT credentials and returns the matching users entry
// (nil for token or single-user auth). nonce is what INFO gave the client
// to sign (nkey users). It touches no client state, so it may run off the
// client's loop; see isSlow.
func (a *authConfig) verify(o *connectOpts, nonce []byte) (*userEntry, bool) {
	switch {
	case !a.required:
		return nil, true
	case a.op != nil:
		return a.op.verifyJWT(a, o, nonce)
	case a.token != "":
		return nil, equalSecret(o.Token, a.token)
	case a.user != "":
		return nil, o.User == a.user && checkPassword(o.Pass, a.pass)
	case o.Nkey != "":
		u := a.nkeys[o.Nkey]
		return u, u != nil && verifyNonce(o.Nkey, o.Sig, nonce)
	}
	if u := a.noAuthFor(o); u != nil {
		return u, true
	}
	u := a.users[o.User]
	if u == nil || !checkPassword(o.Pass, u.pass) {
		return nil, false
	}
	return u, true
}

// noAuthFor is the no_auth_user's entry when o carries no credentials at
// all, else nil.
func (a *authConfig) noAuthFor(o *connectOpts) *userEntry {
	if a.noAuth == nil || o.User != "" || o.Pass != "" || o.Token != "" || o.Nkey != "" {
		return nil
	}
	return a.noAuth
}

// isSlow reports whether verifying o costs a bcrypt comparison, which
// takes milliseconds of CPU and so must not run on an event loop.
func (a *authConfig) isSlow(o *connectOpts) bool {
	switch {
	case !a.required || a.op != nil || a.token != "" || o.Nkey != "" || a.noAuthFor(o) != nil:
		return false
	case a.user != "":
		return isBcrypt(a.pass)
	}
	u := a.users[o.User]
	return u != nil && isBcrypt(u.pass)
}

// setUser installs an authenticated user's name and permissions on c.
func (c *client) setUser(name string, u *userEntry) {
	if u == nil {
		c.applyLimits(nil, c.srv.live.Load())
		return
	}
	c.user = u.name
	c.who = u
	if u.perms != nil {
		c.perms.Store(newPermissions(u.perms))
	}
	c.expires.Store(0)
	if !u.expires.IsZero() {
		c.expires.Store(u.expires.UnixNano())
	}
	c.applyLimits(u, c.srv.live.Load())
}

// applyLimits sets c's subscription and payload limits from its user
// (u, nil for none), its account and the server, the smallest of them,
// as nats-server does at CONNECT and when an account's limits change.
// Runs in c's reading context.
func (c *client) applyLimits(u *userEntry, lv *liveOpts) {
	al := lv.auth.limitsOf(c.acc)
	subs, pay := al.MaxSubscriptions, al.MaxPayload
	if u != nil && u.maxSubs > 0 && (subs < 0 || u.maxSubs < subs) {
		subs = u.maxSubs
	}
	if u != nil && u.maxPayload > 0 && (pay < 0 || u.maxPayload < pay) {
		pay = u.maxPayload
	}
	c.maxSubs = subs
	c.parser.MaxPayload = c.basePayload
	if pay >= 0 && pay < c.parser.MaxPayload {
		c.parser.MaxPayload = pay
	}
}

func isBcrypt(s string) bool {
	return strings.HasPrefix(s, "$2a$") || strings.HasPrefix(s, "$2b$") || strings.HasPrefix(s, "$2y$")
}

// checkPassword compares a client password with a configured one, which may
// be a bcrypt hash as nats-server allows.
func checkPassword(given, want string) bool {
	if isBcrypt(want) {
		return bcrypt.CompareHashAndPassword([]byte(want), []byte(given)) == nil
	}
	return equalSecret(given, want)
}

func equalSecret(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// permissions is one client's compiled publish/subscribe rules with a cache
// of publish decisions. Owned by the client's reader context.
type permissions struct {
	pub, sub *SubjectPermission
	pubCache map[string]bool
}

// A connection's publish decisions are cached: at most maxPermCache entries
// (as nats-server), permCachePrune of them dropped when full, and none for a
// subject longer than maxPermCacheSubject, so that a client cycling through
// long unique subjects pins a few tens of KB, not megabytes.
const (
	maxPermCache        = 128
	permCachePrune      = 32
	maxPermCacheSubject = 256
)

func newPermissions(p *Permissions) *permissions {
	return &permissions{pub: p.Publish, sub: p.Subscribe, pubCache: make(map[string]bool)}
}

// canPublish reports whether subject may be published; decisions are cached
// so the per-message cost is one map lookup.
func (p *permissions) canPublish(subject []byte) bool {
	if p.pub == nil {
		return true
	}
	if ok, hit := p.pubCache[string(subject)]; hit {
		return ok
	}
	ok := allowed(p.pub, string(subject), "")
	if len(subject) > maxPermCacheSubject {
		return ok
	}
	if len(p.pubCache) >= maxPermCache {
		n := 0
		for k := range p.pubCache { // map order: an arbitrary few
			delete(p.pubCache, k)
			if n++; n == permCachePrune {
				break
			}
		}
	}
	p.pubCache[string(subject)] = ok
	return ok
}

// canSubscribe reports whether subject (possibly a wildcard) may be
// subscribed to. A wildcard subscription needs an allow entry that covers it.
func (p *permissions) canSubscribe(subject, queue string) bool {
	if p.sub == nil {
		return true
	}
	return allowed(p.sub, subject, queue)
}

// deliveryDeny returns the subscribe deny patterns that can match messages
// a subscription on subject (with queue) receives although the subscription
// itself was allowed, such as "secret.>" inside ">" or "*.x": as in
// nats-server, deny entries do not refuse a wider wildcard but filter its
// deliveries. It returns nil when none can match, which is what users
// without deny lists and most subscriptions get: one nil check per delivery.
// A deny entry naming a queue filters only that queue group.
func (p *permissions) deliveryDeny(subject, queue string) []string {
	if p == nil || p.sub == nil {
		return nil
	}
	var deny []string
	for _, d := range p.sub.Deny {
		pat, q, hasQ := strings.Cut(d, " ")
		if hasQ && q != queue {
			continue
		}
		if router.SubjectsCollide(pat, subject) {
			deny = append(deny, pat)
		}
	}
	return deny
}

func allowed(sp *SubjectPermission, subject, queue string) bool {
	ok := len(sp.Allow) == 0
	for _, a := range sp.Allow {
		if permMatch(a, subject, queue) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, d := range sp.Deny {
		if permMatch(d, subject, queue) {
			return false
		}
	}
	return true
}

// permMatch matches a permission entry "subject [queue]" against a subject
// that may itself hold wildcards: the entry must cover it.
func permMatch(entry, subject, queue string) bool {
	pat, q, hasQ := strings.Cut(entry, " ")
	if hasQ && q != queue {
		return false
	}
	return router.SubjectCovers(pat, subject)
}
