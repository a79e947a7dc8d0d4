package monitor

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// connSorts are /connz's sort options, as nats-server names them, each
// ordering descending except cid and start (ascending), as nats-server.
var connSorts = map[string]func(a, b *ConnInfo) int{
	"cid":        func(a, b *ConnInfo) int { return cmpU(a.Cid, b.Cid) },
	"start":      func(a, b *ConnInfo) int { return a.Start.Compare(b.Start) },
	"subs":       func(a, b *ConnInfo) int { return cmpU(uint64(b.NumSubs), uint64(a.NumSubs)) },
	"pending":    func(a, b *ConnInfo) int { return b.Pending - a.Pending },
	"msgs_to":    func(a, b *ConnInfo) int { return cmpI(b.OutMsgs, a.OutMsgs) },
	"msgs_from":  func(a, b *ConnInfo) int { return cmpI(b.InMsgs, a.InMsgs) },
	"bytes_to":   func(a, b *ConnInfo) int { return cmpI(b.OutBytes, a.OutBytes) },
	"bytes_from": func(a, b *ConnInfo) int { return cmpI(b.InBytes, a.InBytes) },
	"last":       func(a, b *ConnInfo) int { return b.LastActivity.Compare(a.LastActivity) },
	"idle":       func(a, b *ConnInfo) int { return cmpI(int64(b.idle), int64(a.idle)) },
	"uptime":     func(a, b *ConnInfo) int { return cmpI(int64(b.uptime), int64(a.uptime)) },
	"stop":       func(a, b *ConnInfo) int { return stopOf(b).Compare(stopOf(a)) },
	"reason":     func(a, b *ConnInfo) int { return strings.Compare(a.Reason, b.Reason) },
	"rtt":        func(a, b *ConnInfo) int { return cmpI(int64(b.RTTDur), int64(a.RTTDur)) },
}

func stopOf(c *ConnInfo) time.Time {
	if c.Stop == nil {
		return time.Time{}
	}
	return *c.Stop
}

func cmpI(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Connz answers /connz for the query q; a non-empty error is a bad request.
func (m *Monitor) connz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	sortBy := q.Get("sort")
	if sortBy == "" {
		sortBy = "cid"
	}
	less, ok := connSorts[sortBy]
	if !ok {
		badRequest(w, "invalid sorting option: %s", sortBy)
		return
	}
	auth, ok := decodeBool(w, q, "auth")
	if !ok {
		return
	}
	subs, detail, ok := decodeSubs(w, q)
	if !ok {
		return
	}
	offset, ok := decodeInt(w, q, "offset")
	if !ok {
		return
	}
	limit, ok := decodeInt(w, q, "limit")
	if !ok {
		return
	}
	cid, ok := decodeUint(w, q, "cid")
	if !ok {
		return
	}
	state := strings.ToLower(q.Get("state"))
	switch state {
	case "", "open":
		state = "open"
	case "closed", "any", "all":
	default:
		badRequest(w, "Error decoding state for %s", q.Get("state"))
		return
	}
	if state == "any" {
		state = "all"
	}
	if (sortBy == "stop" || sortBy == "reason") && state != "closed" {
		badRequest(w, "sort by %s only valid on closed connections", sortBy)
		return
	}
	user, mqttID, acc := q.Get("user"), q.Get("mqtt_client"), q.Get("acc")

	offset = max(offset, 0)
	if limit <= 0 {
		limit = 1024
	}
	var list []*ConnInfo
	if state != "closed" {
		list = m.src.Conns(subs)
	}
	if state != "open" {
		list = append(list, m.src.Closed()...)
	}
	now := time.Now()
	kept := list[:0]
	for _, c := range list {
		if c.Account == "" {
			c.Account = GlobalAccount
		}
		if (cid != 0 && c.Cid != cid) || (user != "" && c.AuthorizedUser != user) || (mqttID != "" && c.MQTTClient != mqttID) ||
			(acc != "" && c.Account != acc) {
			continue
		}
		end := now
		if c.Stop != nil {
			end = *c.Stop
		}
		c.uptime, c.idle = end.Sub(c.Start), end.Sub(c.LastActivity)
		c.Uptime, c.Idle = fmtDur(c.uptime), fmtDur(c.idle)
		if !auth { // the account is shown when asked for by name
			c.AuthorizedUser = ""
			if acc == "" {
				c.Account = ""
			}
		}
		if !subs {
			c.Subs, c.SubsDetail = nil, nil
		} else if detail {
			c.Subs = nil
		} else {
			c.SubsDetail = nil
		}
		kept = append(kept, c)
	}
	list = kept
	slices.SortStableFunc(list, func(a, b *ConnInfo) int {
		if d := less(a, b); d != 0 {
			return d
		}
		return cmpU(a.Cid, b.Cid)
	})
	cz := &Connz{ID: m.src.Varz().ID, Now: now.UTC(), Total: len(list), Offset: offset, Limit: limit}
	if cid != 0 {
		cz.Limit = 1
	}
	cz.Conns = page(list, offset, cz.Limit)
	if cz.Conns == nil {
		cz.Conns = []*ConnInfo{}
	}
	cz.NumConns = len(cz.Conns)
	writeJSON(w, cz)
}

// fmtDur writes a duration as nats-server does: "1d2h3m4s", "5m6s", "7s".
func fmtDur(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h, mi, s := d/time.Hour, (d%time.Hour)/time.Minute, (d%time.Minute)/time.Second
	var b strings.Builder
	num := func(n time.Duration, unit string) {
		b.WriteString(strconv.FormatInt(int64(n), 10))
		b.WriteString(unit)
	}
	switch {
	case days > 0:
		num(days, "d")
		num(h, "h")
		num(mi, "m")
		num(s, "s")
	case h > 0:
		num(h, "h")
		num(mi, "m")
		num(s, "s")
	case mi > 0:
		num(mi, "m")
		num(s, "s")
	default:
		num(s, "s")
	}
	return b.String()
}
