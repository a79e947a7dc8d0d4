package loop

// Concurrency: the directory is read when a configuration is taken (New,
// Reload, a claims update), under reloadMu or before Start. Claims updates
// arrive as system-account requests, are queued like the other server
// requests (sysacc.go) and applied on the answerSys goroutine, which takes
// reloadMu: one configuration change at a time, signal or update.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// maxAccountJWT bounds one account JWT file or update.
const maxAccountJWT = 1 << 20

// dirResolver reports whether o's resolver keeps account JWTs in a
// directory (nats-server's full or cache nats-account-resolver).
func dirResolver(o *Options) bool {
	t := strings.ToLower(o.Resolver)
	return t == "full" || t == "cache"
}

// readResolverDir adds to jwts (account public key -> JWT) the account
// JWTs in the resolver directory, <public key>.jwt each; a file and a
// preloaded JWT for the same account: the one issued last wins. A file
// that is not a valid account JWT in force now, of the account it is
// named after and signed by a trusted key, is skipped: what the
// directory holds (an account that expired since it was written, a
// damaged file) must not keep the server from starting or reloading.
func readResolverDir(dir string, jwts map[string]string, trusted map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loop: resolver dir: %w", err)
	}
	for _, e := range ents {
		pub, ok := strings.CutSuffix(e.Name(), ".jwt")
		if !ok || !e.Type().IsRegular() || !nkeys.IsValidPublicAccountKey(pub) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || len(b) > maxAccountJWT {
			continue
		}
		tok := strings.TrimSpace(string(b))
		ac, err := jwt.DecodeAccountClaims(tok)
		if err != nil || ac.Subject != pub || !trusted[ac.Issuer] || !validNow(&ac.ClaimsData, time.Now().Unix()) || validClaims(ac) != nil {
			continue
		}
		if cur, ok := jwts[pub]; ok && issuedAt(cur) > issuedAt(tok) {
			continue
		}
		jwts[pub] = tok
	}
	return nil
}

func issuedAt(tok string) int64 {
	if c, err := jwt.DecodeGeneric(tok); err == nil {
		return c.IssuedAt
	}
	return 0
}

// claimsUpdate applies an account JWT pushed to $SYS.REQ.CLAIMS.UPDATE or
// $SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE (want: <acc>, or ""): it must be
// signed by a trusted operator key and not older than the one in force;
// it is written to the resolver directory and the accounts are taken
// again, as a reload takes them. It returns the account and an error.
func (s *Server) claimsUpdate(want string, body []byte) (string, error) {
	if len(body) > maxAccountJWT {
		return "n/a", errors.New("jwt too large")
	}
	ac, err := jwt.DecodeAccountClaims(strings.TrimSpace(string(body)))
	if err != nil {
		return "n/a", err
	}
	pub := ac.Subject
	if err := validClaims(ac); err != nil {
		return pub, err
	}
	if !nkeys.IsValidPublicAccountKey(pub) { // it names a file
		return "n/a", errors.New("not an account public key")
	}
	if want != "" && want != pub {
		return pub, fmt.Errorf("subject %q does not match the jwt's account", want)
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	a := s.live.Load().auth
	if a.op == nil || !dirResolver(&s.liveSrc) {
		return pub, errors.New("no directory resolver")
	}
	if !a.op.trusted[ac.Issuer] {
		return pub, errors.New("not trusted")
	}
	if cur := a.op.accounts[pub]; cur != nil && cur.IssuedAt > ac.IssuedAt {
		return pub, errors.New("jwt is older than the one in force")
	}
	if !validNow(&ac.ClaimsData, time.Now().Unix()) {
		return pub, errors.New("jwt expired or not yet valid")
	}
	dir := s.liveSrc.ResolverDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return pub, err
	}
	file := filepath.Join(dir, pub+".jwt")
	prev, prevErr := os.ReadFile(file)
	if err := writeFileAtomic(file, body); err != nil {
		return pub, err
	}
	o := s.liveSrc
	if err := s.applyAuthLocked(&o); err != nil {
		// The accounts cannot take it (an import nobody exports...):
		// the directory goes back to what it held.
		if prevErr == nil {
			_ = writeFileAtomic(file, prev)
		} else {
			_ = os.Remove(file)
		}
		return pub, err
	}
	s.Noticef("account %s: jwt updated", pub)
	return pub, nil
}

// writeFileAtomic replaces file with body through a temporary file in
// the same directory.
func writeFileAtomic(file string, body []byte) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, body, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// claimsLookup is account pub's JWT in force ($SYS.REQ.ACCOUNT.<pub>.
// CLAIMS.LOOKUP), "" when the resolver has none.
func (s *Server) claimsLookup(pub string) string {
	if op := s.live.Load().auth.op; op != nil {
		return op.jwts[pub]
	}
	return ""
}

// claimsList is every account the resolver holds ($SYS.REQ.CLAIMS.LIST).
func (s *Server) claimsList() []string {
	if op := s.live.Load().auth.op; op != nil {
		return sortedKeys(op.jwts)
	}
	return []string{}
}

// claimsDelete removes the account JWTs that a delete request names
// ($SYS.REQ.CLAIMS.DELETE, nats-server's rules): a generic JWT issued by
// a trusted operator key to itself, listing account public keys in
// "accounts", never the system account's; the resolver must allow
// deletes. The files go (renamed to .deleted unless hard_delete) and the
// accounts are taken again, so their users are disconnected; if the
// others cannot do without them, the files come back. It returns the
// request's issuer, the message for a success and an error.
func (s *Server) claimsDelete(body []byte) (issuer, msg string, err error) {
	if len(body) > maxAccountJWT {
		return "", "", errors.New("jwt too large")
	}
	gc, err := jwt.DecodeGeneric(strings.TrimSpace(string(body)))
	if err != nil {
		return "", "", err
	}
	issuer = gc.Subject
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	a := s.live.Load().auth
	o := s.liveSrc
	var keys []string
	switch list, ok := gc.Data["accounts"].([]any); {
	case a.op == nil || !dirResolver(&o) || !o.ResolverAllowDelete:
		return issuer, "", errors.New("delete must be enabled in server config")
	case gc.Subject != gc.Issuer:
		return issuer, "", errors.New("not self signed")
	case !a.op.trusted[gc.Issuer]:
		return issuer, "", errors.New("not trusted")
	case !ok:
		return issuer, "", errors.New("malformed request")
	default:
		for _, e := range list {
			k, ok := e.(string)
			if !ok || !nkeys.IsValidPublicAccountKey(k) { // it names a file
				return issuer, "", errors.New("malformed request")
			}
			if a.sysAcc != nil && k == a.sysAcc.name {
				return issuer, "", errors.New("not allowed to delete system account")
			}
			keys = append(keys, k)
		}
	}
	type moved struct{ file, to string }
	var done []moved
	var errs []string
	for _, k := range keys {
		file := filepath.Join(o.ResolverDir, k+".jwt")
		to := file + ".deleted"
		if o.ResolverHardDelete {
			to = file + ".deleting"
		}
		if err := os.Rename(file, to); err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err.Error())
			}
			continue
		}
		done = append(done, moved{file, to})
	}
	if err := s.applyAuthLocked(&o); err != nil {
		for _, m := range done {
			_ = os.Rename(m.to, m.file)
		}
		return issuer, "", err
	}
	for _, m := range done {
		if o.ResolverHardDelete {
			_ = os.Remove(m.to)
		}
		s.Noticef("account %s: jwt deleted", strings.TrimSuffix(filepath.Base(m.file), ".jwt"))
	}
	n := len(keys) - len(errs)
	if len(errs) > 0 {
		return issuer, "", fmt.Errorf("deleted %d accounts, failed for %d: %s", n, len(errs), strings.Join(errs, "\n"))
	}
	return issuer, fmt.Sprintf("deleted %d accounts", n), nil
}
