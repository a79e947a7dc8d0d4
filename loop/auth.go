package loop

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/evnats/evnats/router"
	"golang.org/x/crypto/bcrypt"
)

// authConfig is the server's immutable authentication setup.
type authConfig struct {
	required bool
	token    string
	user     string
	pass     string
	users    map[string]*userEntry
}

type userEntry struct {
	pass  string
	perms *Permissions
}

func newAuthConfig(o *Options) (*authConfig, error) {
	a := &authConfig{required: o.authRequired(), token: o.Token, user: o.Username, pass: o.Password}
	n := 0
	for _, set := range []bool{o.Token != "", o.Username != "", len(o.Users) > 0} {
		if set {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("loop: configure only one of token, user/password or users")
	}
	if o.Username != "" && o.Password == "" {
		return nil, errors.New("loop: user without password")
	}
	if len(o.Users) > 0 {
		a.users = make(map[string]*userEntry, len(o.Users))
		for _, u := range o.Users {
			if u.Username == "" {
				return nil, errors.New("loop: users entry without user name")
			}
			if _, dup := a.users[u.Username]; dup {
				return nil, fmt.Errorf("loop: duplicate user %q", u.Username)
			}
			if err := validatePerms(u.Permissions); err != nil {
				return nil, fmt.Errorf("loop: user %q: %w", u.Username, err)
			}
			a.users[u.Username] = &userEntry{pass: u.Password, perms: u.Permissions}
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

// authenticate checks CONNECT credentials and installs the user's
// permissions on c. It reports whether c may proceed.
func (a *authConfig) authenticate(c *client, o *connectOpts) bool {
	switch {
	case !a.required:
		return true
	case a.token != "":
		return equalSecret(o.Token, a.token)
	case a.user != "":
		return o.User == a.user && checkPassword(o.Pass, a.pass)
	}
	u := a.users[o.User]
	if u == nil || !checkPassword(o.Pass, u.pass) {
		return false
	}
	c.user = o.User
	if u.perms != nil {
		c.perms = newPermissions(u.perms)
	}
	return true
}

// checkPassword compares a client password with a configured one, which may
// be a bcrypt hash as nats-server allows.
func checkPassword(given, want string) bool {
	if strings.HasPrefix(want, "$2a$") || strings.HasPrefix(want, "$2b$") || strings.HasPrefix(want, "$2y$") {
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

const maxPermCache = 1024

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
	if len(p.pubCache) >= maxPermCache {
		clear(p.pubCache)
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
