package federation

import (
	"net"
	"net/http"
	"strings"

	"github.com/tidwall/gjson"
	mfed "maunium.net/go/mautrix/federation"

	"github.com/ganglion/ganglion/fsm"
)

// Server ACLs (m.room.server_acl): applied to the origin of every request
// about a room, to the sender's server of every PDU and to the origin of
// every room EDU. The event's schema gives the order of the checks.

// serverACL is a room's m.room.server_acl content.
type serverACL struct {
	present         bool
	allowIPLiterals bool
	allow, deny     []string
}

// parseACL reads an ACL content; entries that are not strings are ignored.
func parseACL(content []byte) serverACL {
	acl := serverACL{present: true, allowIPLiterals: true}
	if v := gjson.GetBytes(content, "allow_ip_literals"); v.Type == gjson.False {
		acl.allowIPLiterals = false
	}
	for _, v := range gjson.GetBytes(content, "allow").Array() {
		if v.Type == gjson.String {
			acl.allow = append(acl.allow, strings.ToLower(v.Str))
		}
	}
	for _, v := range gjson.GetBytes(content, "deny").Array() {
		if v.Type == gjson.String {
			acl.deny = append(acl.deny, strings.ToLower(v.Str))
		}
	}
	return acl
}

// allows reports whether server may take part in the room.
func (acl serverACL) allows(server string) bool {
	if !acl.present {
		return true
	}
	host := server
	if h, _, ok := mfed.ParseServerName(server); ok {
		host = h
	}
	host = strings.ToLower(host)
	if !acl.allowIPLiterals && net.ParseIP(strings.Trim(host, "[]")) != nil {
		return false
	}
	for _, g := range acl.deny {
		if globMatch(g, host) {
			return false
		}
	}
	for _, g := range acl.allow {
		if globMatch(g, host) {
			return true
		}
	}
	return false
}

// roomACL is the ACL in a room's current state (none: everyone allowed).
func roomACL(rt *fsm.ReadTx, roomID string) serverACL {
	ev, err := rt.StateEvent(roomID, "m.room.server_acl", "")
	if err != nil || ev.Rejected {
		return serverACL{}
	}
	return parseACL([]byte(gjson.GetBytes(ev.PDU, "content").Raw))
}

// aclAllows reads the room's ACL and checks server against it.
func (a *API) aclAllows(roomID, server string) bool {
	allowed := true
	_ = a.store.View(func(rt *fsm.ReadTx) error {
		allowed = roomACL(rt, roomID).allows(server)
		return nil
	})
	return allowed
}

// errACLDenied is the answer to a request from a server the room's ACL
// denies.
func errACLDenied(server string) *matrixError {
	return errorf(http.StatusForbidden, "M_FORBIDDEN", "server "+server+" is denied by the room's server ACL")
}

// globMatch matches s against a glob of '*' (any run) and '?' (any one
// character), both already lower-cased; it runs in O(len(g)*len(s)).
func globMatch(g, s string) bool {
	gi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case gi < len(g) && (g[gi] == '?' || g[gi] == s[si]):
			gi++
			si++
		case gi < len(g) && g[gi] == '*':
			star, mark = gi, si
			gi++
		case star >= 0:
			gi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for gi < len(g) && g[gi] == '*' {
		gi++
	}
	return gi == len(g)
}
