package loop

// Concurrency: operator mode is read once per load (New, Reload) on the
// caller's goroutine into the authConfig, which is immutable after; a
// user JWT is checked in verify, on the client's goroutine (or a
// verifySlow one), touching only its arguments and the authConfig.

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/evnats/evnats/router"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// operatorMode is what operator mode adds to an authConfig: the keys an
// account JWT must be signed by, and the accounts the resolver holds by
// public key.
type operatorMode struct {
	trusted  map[string]bool
	accounts map[string]*jwt.AccountClaims
	jwts     map[string]string // the account JWTs in force, as given
	// invalid are preloaded account JWTs the jwt package's validation
	// blocks, with why: not loaded (their users cannot log in), logged
	// at start as nats-server warns of them.
	invalid map[string]error
}

// loadOperator checks o's operator JWTs and the resolver's preloaded
// account JWTs, and returns the accounts they define as Account entries
// (named by public key) to add to the configured ones.
func loadOperator(o *Options) (*operatorMode, []*Account, error) {
	if len(o.Operators) == 0 {
		if len(o.ResolverPreload) > 0 || o.Resolver != "" {
			return nil, nil, errors.New("loop: resolver and resolver_preload need an operator")
		}
		return nil, nil, nil
	}
	if o.Token != "" || o.Username != "" || len(o.Users) > 0 || o.NoAuthUser != "" {
		return nil, nil, errors.New("loop: operator mode: authorization users, token or no_auth_user cannot be used with an operator (users come from JWTs)")
	}
	for _, a := range o.Accounts {
		if len(a.Users) > 0 {
			return nil, nil, fmt.Errorf("loop: operator mode: account %q has users; in operator mode users come from JWTs", a.Name)
		}
	}
	om := &operatorMode{trusted: map[string]bool{}, accounts: map[string]*jwt.AccountClaims{}}
	now := time.Now().Unix()
	for _, tok := range o.Operators {
		oc, err := jwt.DecodeOperatorClaims(tok)
		if err != nil {
			return nil, nil, fmt.Errorf("loop: operator: %w", err)
		}
		if oc.Expires > 0 && oc.Expires < now {
			return nil, nil, fmt.Errorf("loop: operator %q: JWT expired", oc.Subject)
		}
		om.trusted[oc.Subject] = true
		for _, k := range oc.SigningKeys {
			om.trusted[k] = true
		}
	}
	jwts := make(map[string]string, len(o.ResolverPreload))
	for k, v := range o.ResolverPreload {
		jwts[k] = v
	}
	switch strings.ToUpper(o.Resolver) {
	case "MEMORY", "MEM":
	case "FULL", "CACHE":
		if o.ResolverDir == "" {
			return nil, nil, errors.New("loop: resolver: a full or cache resolver needs a dir")
		}
		if err := readResolverDir(o.ResolverDir, jwts, om.trusted); err != nil {
			return nil, nil, err
		}
	case "":
		return nil, nil, errors.New("loop: operator mode needs a resolver (resolver: MEMORY with resolver_preload, or {type: full, dir: ...})")
	default:
		return nil, nil, fmt.Errorf("loop: resolver %q: want MEMORY, or a block with type full or cache", o.Resolver)
	}
	var accs []*Account
	for _, pub := range sortedKeys(jwts) {
		ac, err := jwt.DecodeAccountClaims(jwts[pub])
		if err != nil {
			return nil, nil, fmt.Errorf("loop: resolver_preload %q: %w", pub, err)
		}
		switch {
		case !nkeys.IsValidPublicAccountKey(pub):
			return nil, nil, fmt.Errorf("loop: resolver_preload %q: not an account public key", pub)
		case ac.Subject != pub:
			return nil, nil, fmt.Errorf("loop: resolver_preload %q: the JWT is account %q's", pub, ac.Subject)
		case !om.trusted[ac.Issuer]:
			return nil, nil, fmt.Errorf("loop: resolver_preload %q: account JWT not signed by a trusted operator", pub)
		case ac.Expires > 0 && ac.Expires < now:
			return nil, nil, fmt.Errorf("loop: resolver_preload %q: account JWT expired", pub)
		}
		if err := validClaims(ac); err != nil {
			if om.invalid == nil {
				om.invalid = map[string]error{}
			}
			om.invalid[pub] = err
			delete(jwts, pub)
			continue
		}
		om.accounts[pub] = ac
	}
	om.jwts = jwts
	for _, pub := range sortedKeys(jwts) {
		acc := accountOfJWT(om.accounts[pub], func(im *jwt.Import) bool { return om.importAllowed(pub, im, now) })
		acc.JetStream = acc.JetStream && o.JetStream // limits in a JWT, JetStream off: as nats-server, none
		accs = append(accs, acc)
	}
	return om, accs, nil
}

// claimsInvalid is an account JWT the jwt package's own validation
// blocks: more imports or exports than its limits allow, a bad export or
// import, a revocation or mapping it cannot hold. nats-server refuses
// such a JWT from the resolver and from a claims update alike.
type claimsInvalid struct{ errs []error }

func (e *claimsInvalid) Error() string { return fmt.Sprintf("validation errors: %v", e.errs) }

// validClaims runs the jwt package's validation of ac, as nats-server's
// claimValidate does.
func validClaims(ac *jwt.AccountClaims) error {
	vr := jwt.CreateValidationResults()
	ac.Validate(vr)
	if vr.IsBlocking(false) {
		return &claimsInvalid{vr.Errors()}
	}
	return nil
}

// importAllowed reports whether account importer may have import im: an
// export that requires a token (token_req) is imported only with an
// activation JWT the exporter issued to importer for that subject, in
// force and not revoked. An import no export covers is left to
// checkImport, which refuses it with nats-server's text.
func (om *operatorMode) importAllowed(importer string, im *jwt.Import, now int64) bool {
	exp := om.accounts[im.Account]
	if exp == nil {
		return true
	}
	covered := false
	for _, e := range exp.Exports {
		if e.Type != im.Type || !router.SubjectCovers(string(e.Subject), string(im.Subject)) {
			continue
		}
		covered = true
		if !e.TokenReq || validActivation(exp, e, importer, im, now) {
			return true
		}
	}
	return !covered
}

// validActivation checks im's activation token against export e of
// account exp.
func validActivation(exp *jwt.AccountClaims, e *jwt.Export, importer string, im *jwt.Import, now int64) bool {
	if im.Token == "" {
		return false
	}
	act, err := jwt.DecodeActivationClaims(im.Token)
	if err != nil || act.Subject != importer || !validNow(&act.ClaimsData, now) {
		return false
	}
	if act.Issuer != exp.Subject && (act.IssuerAccount != exp.Subject || !exp.SigningKeys.Contains(act.Issuer)) {
		return false
	}
	if act.ImportType != im.Type || !router.SubjectCovers(string(act.ImportSubject), string(im.Subject)) {
		return false
	}
	return !e.IsClaimRevoked(act)
}

// accountOfJWT is the Account entry an account JWT describes: its exports,
// imports and JetStream limits.
func accountOfJWT(ac *jwt.AccountClaims, allowed func(*jwt.Import) bool) *Account {
	a := &Account{Name: ac.Subject}
	for _, e := range ac.Exports {
		x := &Export{}
		if e.IsService() {
			x.Service = string(e.Subject)
			x.ResponseType = strings.ToLower(string(e.ResponseType))
			x.ResponseThreshold = e.ResponseThreshold
		} else {
			x.Stream = string(e.Subject)
		}
		a.Exports = append(a.Exports, x)
	}
	for _, im := range ac.Imports {
		if !allowed(im) {
			continue // as nats-server: an import it may not have is left out
		}
		src := &ImportSource{Account: im.Account, Subject: string(im.Subject)}
		x := &Import{}
		local := string(im.LocalSubject)
		if local == "" {
			local = string(im.To)
		}
		if im.IsService() {
			x.Service, x.To = src, local
		} else {
			x.Stream = src
			if local != "" {
				x.To = local
			}
		}
		a.Imports = append(a.Imports, x)
	}
	srcs := make([]string, 0, len(ac.Mappings))
	for src := range ac.Mappings {
		srcs = append(srcs, string(src))
	}
	sort.Strings(srcs)
	for _, src := range srcs {
		mp := &Mapping{Source: src}
		for _, wm := range ac.Mappings[jwt.Subject(src)] {
			mp.Dests = append(mp.Dests, MappingDest{Subject: string(wm.Subject), Weight: int(wm.GetWeight())})
		}
		if _, err := compileMapping(mp); err == nil { // one the server cannot do is left out
			a.Mappings = append(a.Mappings, mp)
		}
	}
	a.Limits = &AccountLimits{
		MaxConnections:   jwtLimit(ac.Limits.Conn),
		MaxSubscriptions: jwtLimit(ac.Limits.Subs),
		MaxPayload:       jwtLimit(ac.Limits.Payload),
		MaxLeafNodes:     jwtLimit(ac.Limits.LeafNodeConn),
	}
	js := ac.Limits.JetStreamLimits
	if js.MemoryStorage != 0 || js.DiskStorage != 0 {
		a.JetStream = true
		a.JetStreamLimits = AccountJSLimits{MaxMemory: max(js.MemoryStorage, 0), MaxStore: max(js.DiskStorage, 0), MaxStreams: int(max(js.Streams, 0)), MaxConsumers: int(max(js.Consumer, 0))}
	}
	return a
}

// jwtLimit is a JWT's count limit as an AccountLimits one: -1 (or any
// negative) unlimited, others clamped to an int32, as nats-server does.
func jwtLimit(n int64) int {
	if n < 0 {
		return -1
	}
	return int(min(n, 1<<31-1))
}

// verifyJWT checks a CONNECT in operator mode: a user JWT signed by a
// known account (or one of its signing keys), not expired nor revoked,
// and the nonce signed by the user's key. The entry it returns is made
// for this connection.
func (om *operatorMode) verifyJWT(a *authConfig, o *connectOpts, nonce []byte) (*userEntry, bool) {
	uc, ac, ok := om.userClaims(a, o)
	// A bearer token's JWT needs no signature, as with nats-server (for
	// every client protocol; MQTT has no other way).
	if !ok || !uc.BearerToken && !verifyNonce(uc.Subject, o.Sig, nonce) {
		return nil, false
	}
	return om.entry(a, uc, ac), true
}

// userClaims decodes a user JWT and finds its account; it checks the
// signatures, the issuer (and a scoped signer's template), the validity
// period of both JWTs, revocation, and the source network and connection
// type the user JWT allows (o.host, o.connType); not the nonce.
func (om *operatorMode) userClaims(a *authConfig, o *connectOpts) (*jwt.UserClaims, *jwt.AccountClaims, bool) {
	tok := o.JWT
	if tok == "" {
		return nil, nil, false
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return nil, nil, false
	}
	accKey := uc.Issuer
	if uc.IssuerAccount != "" {
		accKey = uc.IssuerAccount
	}
	ac := om.accounts[accKey]
	if ac == nil || a.accounts[accKey] == nil {
		return nil, nil, false
	}
	if uc.Issuer != ac.Subject && !ac.SigningKeys.Contains(uc.Issuer) {
		return nil, nil, false
	}
	// A user issued by a scoped signing key has the scope's permissions
	// and limits and may not carry its own (nats-server refuses it):
	// otherwise whoever holds the key could grant itself anything.
	if scope, _ := ac.SigningKeys.GetScope(uc.Issuer); scope != nil {
		us, ok := scope.(*jwt.UserScope)
		if !ok || scope.ValidateScopedSigner(uc) != nil {
			return nil, nil, false
		}
		uc.UserPermissionLimits = us.Template
	}
	now := time.Now().Unix()
	if !validNow(&uc.ClaimsData, now) || !validNow(&ac.ClaimsData, now) || ac.IsClaimRevoked(uc) {
		return nil, nil, false
	}
	if len(uc.AllowedConnectionTypes) > 0 && !uc.AllowedConnectionTypes.Contains(connType(o)) {
		return nil, nil, false
	}
	if len(uc.Src) > 0 && !srcAllowed(uc.Src, o.host) {
		return nil, nil, false
	}
	if ok, _ := inTimes(uc.Times, uc.Locale, time.Now()); len(uc.Times) > 0 && !ok {
		return nil, nil, false
	}
	return uc, ac, true
}

// inTimes reports whether now is within one of a user JWT's connect time
// ranges ("15:04:05" to "15:04:05", in locale or the server's zone; an
// end before the start runs past midnight), and until when: the latest end
// of the ranges that hold now. Unparsable: never.
func inTimes(times []jwt.TimeRange, locale string, now time.Time) (bool, time.Time) {
	loc := time.Local
	if locale != "" {
		l, err := time.LoadLocation(locale)
		if err != nil {
			return false, time.Time{}
		}
		loc = l
	}
	now = now.In(loc)
	tod := func(s string) (time.Duration, bool) {
		t, err := time.Parse("15:04:05", s)
		if err != nil {
			return 0, false
		}
		return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second, true
	}
	cur := time.Duration(now.Hour())*time.Hour + time.Duration(now.Minute())*time.Minute + time.Duration(now.Second())*time.Second
	y, m, d := now.Date()
	midnight := time.Date(y, m, d, 0, 0, 0, 0, loc)
	var until time.Time
	ok := false
	for _, r := range times {
		start, ok1 := tod(r.Start)
		end, ok2 := tod(r.End)
		if !ok1 || !ok2 {
			continue
		}
		var e time.Time
		switch {
		case start <= end && cur >= start && cur <= end, start > end && cur <= end:
			e = midnight.Add(end)
		case start > end && cur >= start:
			e = midnight.Add(24*time.Hour + end)
		default:
			continue
		}
		if !ok || e.After(until) {
			ok, until = true, e
		}
	}
	return ok, until
}

// validNow reports whether a JWT is in force at unix time now: not
// expired and not before its nbf.
func validNow(c *jwt.ClaimsData, now int64) bool {
	return (c.Expires == 0 || c.Expires >= now) && (c.NotBefore == 0 || c.NotBefore <= now)
}

// connType is the jwt connection type of the client o came from.
func connType(o *connectOpts) string {
	if o.connType == "" {
		return jwt.ConnectionTypeStandard
	}
	return o.connType
}

// srcAllowed reports whether host is in one of a user JWT's source
// networks (CIDRs, or plain addresses).
func srcAllowed(src jwt.CIDRList, host string) bool {
	ip := net.ParseIP(host)
	if ip == nil {
		return false
	}
	for _, s := range src {
		for _, one := range strings.Split(s, ",") {
			one = strings.TrimSpace(one)
			if _, n, err := net.ParseCIDR(one); err == nil && n.Contains(ip) {
				return true
			}
			if a := net.ParseIP(one); a != nil && a.Equal(ip) {
				return true
			}
		}
	}
	return false
}

// entry is the users entry of a verified user JWT.
func (om *operatorMode) entry(a *authConfig, uc *jwt.UserClaims, ac *jwt.AccountClaims) *userEntry {
	u := &userEntry{name: uc.Subject, nkey: true, acc: a.accounts[ac.Subject].acc, nameTag: uc.Name, accTag: ac.Name}
	// It is closed when its JWT expires, its account's does, or its
	// connect time range ends (the first of them).
	earliest := func(t time.Time) {
		if u.expires.IsZero() || t.Before(u.expires) {
			u.expires = t
		}
	}
	if uc.Expires > 0 {
		earliest(time.Unix(uc.Expires, 0))
	}
	if ac.Expires > 0 {
		earliest(time.Unix(ac.Expires, 0))
	}
	if ok, until := inTimes(uc.Times, uc.Locale, time.Now()); len(uc.Times) > 0 && ok {
		earliest(until)
	}
	p := uc.Permissions
	if len(p.Pub.Allow)+len(p.Pub.Deny)+len(p.Sub.Allow)+len(p.Sub.Deny) > 0 {
		u.perms = &Permissions{}
		if len(p.Pub.Allow)+len(p.Pub.Deny) > 0 {
			u.perms.Publish = &SubjectPermission{Allow: p.Pub.Allow, Deny: p.Pub.Deny}
		}
		if len(p.Sub.Allow)+len(p.Sub.Deny) > 0 {
			u.perms.Subscribe = &SubjectPermission{Allow: p.Sub.Allow, Deny: p.Sub.Deny}
		}
		if validatePerms(u.perms) != nil {
			u.perms = &Permissions{Publish: &SubjectPermission{Deny: []string{">"}}, Subscribe: &SubjectPermission{Deny: []string{">"}}}
		}
	}
	if uc.Limits.Subs > 0 {
		u.maxSubs = int(min(uc.Limits.Subs, 1<<31))
	}
	if uc.Limits.Payload > 0 {
		u.maxPayload = int(min(uc.Limits.Payload, 1<<31))
	}
	return u
}
