package federation

import (
	"context"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix"
	mfed "maunium.net/go/mautrix/federation"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
	"github.com/ganglion/ganglion/rooms"
)

// The joining side of the membership handshakes: ask a resident server for
// a template (make_join, make_knock, make_leave), check it, fill it in,
// sign it. Each flow then sends it back (send_*) and stores the outcome.

// RemoteMembership is what the client API needs for rooms this server is
// not in; *API implements it.
type RemoteMembership interface {
	JoinRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, content map[string]any) (string, error)
	LeaveRemote(ctx context.Context, userID, roomID, reason string) error
	KnockRemote(ctx context.Context, userID, roomIDOrAlias string, via []string, reason string) (string, error)
	InviteRemote(ctx context.Context, version id.RoomVersion, invite *pdu.PDU, inviteRoomState []json.RawMessage) (*pdu.PDU, error)
}

var (
	_ RemoteMembership    = (*API)(nil)
	_ rooms.RemoteInviter = (*API)(nil)
)

// supportedVersions lists the room versions we can take part in.
func supportedVersions() []id.RoomVersion {
	out := make([]id.RoomVersion, 0, len(rooms.SupportedVersions))
	for v := range rooms.SupportedVersions {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// signedMembership is our signed membership event built on a resident
// server's template.
type signedMembership struct {
	p      *pdu.PDU
	ver    id.RoomVersion
	id     string
	raw    json.RawMessage
	server string // the resident server that gave the template
}

// signedTemplate asks server for userID's membership template in roomID,
// checks it is what was asked for (the spec's MUSTs), fills in the time,
// our profile and content, and signs it.
func (a *API) signedTemplate(ctx context.Context, server, roomID, userID, membership string, content map[string]any) (*signedMembership, error) {
	fed, err := a.client.Fed()
	if err != nil {
		return nil, err
	}
	req := &mfed.ReqMakeJoin{RoomID: id.RoomID(roomID), UserID: id.UserID(userID), Via: server, SupportedVersions: supportedVersions()}
	var resp *mfed.RespMakeJoin
	switch membership {
	case "join":
		resp, err = fed.MakeJoin(ctx, req)
	case "knock":
		resp, err = fed.MakeKnock(ctx, req)
	default:
		resp, err = fed.MakeLeave(ctx, &mfed.ReqMakeLeave{RoomID: req.RoomID, UserID: req.UserID, Via: server})
	}
	if err != nil {
		return nil, err
	}
	ver := resp.RoomVersion
	if ver == "" {
		ver = "1" // the spec's assumption for an answer without one
	}
	if !rooms.SupportedVersions[ver] {
		return nil, fsm.Errorf(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION",
			"room %s has version %s, which this server does not support", roomID, ver)
	}
	p, err := fsm.ParsePDU(resp.Event)
	if err != nil || p.RoomID.String() != roomID || p.Sender.String() != userID || p.Type != "m.room.member" ||
		p.StateKey == nil || *p.StateKey != userID || gjson.GetBytes(p.Content, "membership").Str != membership {
		return nil, errBadTemplate
	}
	if err := a.fillTemplate(p, userID, membership, content); err != nil {
		return nil, err
	}
	key, err := a.keys.Current()
	if err != nil {
		return nil, err
	}
	if err := p.Sign(ver, a.cfg.ServerName, key.ID, key.Priv); err != nil {
		return nil, err
	}
	evID, err := p.GetEventID(ver)
	if err != nil {
		return nil, err
	}
	raw, err := jsonv2.Marshal(p)
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxPDUBytes {
		return nil, fsm.Errorf(http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "event is larger than %d bytes", MaxPDUBytes)
	}
	return &signedMembership{p: p, ver: ver, id: string(evID), raw: raw, server: server}, nil
}

// errBadTemplate: the resident's template is not the event asked for; the
// spec says to discard it (and try another server).
var errBadTemplate = errors.New("the resident server's template is not the membership event asked for")

// fillTemplate sets what the joining server owns: the time, origin, our
// profile (joins and knocks) and the caller's content. The template keeps
// its membership and, for restricted joins, its authoriser.
func (a *API) fillTemplate(p *pdu.PDU, userID, membership string, extra map[string]any) error {
	var content map[string]any
	if err := json.Unmarshal(p.Content, &content); err != nil || content == nil {
		return errBadTemplate
	}
	if membership != "leave" {
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			if u, err := rt.User(userID); err == nil {
				if u.DisplayName != "" {
					content["displayname"] = u.DisplayName
				}
				if u.AvatarURL != "" {
					content["avatar_url"] = u.AvatarURL
				}
			}
			return nil
		})
	}
	for k, v := range extra {
		if k != "membership" && k != "join_authorised_via_users_server" {
			content[k] = v
		}
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return err
	}
	origin, _ := json.Marshal(a.cfg.ServerName)
	p.Content, p.DeprecatedOrigin = jsontext.Value(raw), jsontext.Value(origin)
	p.OriginServerTS = time.Now().UnixMilli()
	p.Signatures, p.Hashes, p.Unsigned = nil, nil, nil
	if len(p.Unknown) > 0 {
		// Room v1/v2 templates carry an event_id; ours is the reference hash.
		var unknown map[string]jsontext.Value
		if jsonv2.Unmarshal(p.Unknown, &unknown) == nil {
			delete(unknown, "event_id")
			out, _ := jsonv2.Marshal(unknown, jsonv2.Deterministic(true))
			p.Unknown = out
		}
	}
	return nil
}

// candidateServers lists the servers to ask, in order, without ours and
// without repeats: the caller's (via, server_name), then those given for
// an alias, then the room ID's own (rooms before v12 carry one).
func (a *API) candidateServers(roomID string, lists ...[]string) []string {
	var out []string
	add := func(s string) {
		s = strings.TrimSpace(s)
		if s != "" && s != a.cfg.ServerName && !slices.Contains(out, s) {
			if _, _, ok := mfed.ParseServerName(s); ok {
				out = append(out, s)
			}
		}
	}
	for _, l := range lists {
		for _, s := range l {
			add(s)
		}
	}
	if _, server, ok := strings.Cut(roomID, ":"); ok {
		add(server)
	}
	return out
}

// resolveRoom turns a room ID or alias into a room ID and the servers the
// alias's directory suggests. A local alias is read from the store; a
// remote one is asked of its server (query/directory).
func (a *API) resolveRoom(ctx context.Context, roomIDOrAlias string) (string, []string, error) {
	if !strings.HasPrefix(roomIDOrAlias, "#") {
		return roomIDOrAlias, nil, nil
	}
	_, server, ok := strings.Cut(roomIDOrAlias, ":")
	if !ok {
		return "", nil, fsm.Errorf(http.StatusBadRequest, "M_INVALID_PARAM", "invalid room alias")
	}
	if server == a.cfg.ServerName {
		var roomID string
		var found bool
		_ = a.store.View(func(rt *fsm.ReadTx) error {
			roomID, _, found = rt.AliasRoom(roomIDOrAlias)
			return nil
		})
		if !found {
			return "", nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "room alias %s not found", roomIDOrAlias)
		}
		return roomID, nil, nil
	}
	fed, err := a.client.Fed()
	if err != nil {
		return "", nil, err
	}
	resp, err := fed.QueryDirectory(ctx, server, id.RoomAlias(roomIDOrAlias))
	if err != nil || resp == nil || resp.RoomID == "" {
		if fe := remoteFailure(err); fe != nil && fe.Status != http.StatusNotFound {
			return "", nil, fe
		}
		return "", nil, fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "room alias %s not found", roomIDOrAlias)
	}
	return resp.RoomID.String(), append(resp.Servers, server), nil
}

// remoteFailure turns another server's error answer into one for our
// client: its 4xx refusals pass through (403 M_FORBIDDEN, 404 M_NOT_FOUND,
// 400 M_INCOMPATIBLE_ROOM_VERSION, ...), except missing or invalid
// parameters, which are our fault (502, as the spec asks). Anything else
// (unreachable, 5xx, 401 and 429 about our own request) is nil: another
// server may do.
func remoteFailure(err error) *fsm.Error {
	var he mautrix.HTTPError
	if !errors.As(err, &he) || he.RespError == nil || he.Response == nil {
		return nil
	}
	status, code := he.Response.StatusCode, he.RespError.ErrCode
	switch {
	case status < 400 || status >= 500:
		return nil
	case status == http.StatusUnauthorized || status == http.StatusTooManyRequests:
		return nil // about our request, not the room: never our client's 401
	case code == "M_MISSING_PARAM" || code == "M_INVALID_PARAM":
		return fsm.Errorf(http.StatusBadGateway, "M_UNKNOWN", "the remote server refused our request: %s", he.RespError.Err)
	}
	return fsm.Errorf(status, code, "%s", he.RespError.Err)
}

// failsOver reports a refusal after which another server may still help.
func failsOver(fe *fsm.Error) bool {
	return fe.Status == http.StatusNotFound || fe.Errcode == "M_UNABLE_TO_AUTHORISE_JOIN" ||
		fe.Errcode == "M_UNABLE_TO_GRANT_JOIN" || fe.Errcode == "M_UNRECOGNIZED"
}

// committing bounds what follows a successful handshake (checking the
// answer, proposing it): it goes on when the client gives up, so the
// remote's view and ours do not part.
func committing(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
}

// tryServers runs attempt against each server in turn: the first success
// ends it; a refusal another server would repeat (403, version) is
// returned at once; when every server failed, the last refusal, or 404
// when none could be reached.
func (a *API) tryServers(servers []string, what string, attempt func(server string) error) error {
	var last *fsm.Error
	for _, server := range servers {
		err := attempt(server)
		if err == nil {
			return nil
		}
		var fe *fsm.Error
		if errors.As(err, &fe) || errors.Is(err, errBadTemplate) {
			if fe != nil && !failsOver(fe) {
				return fe
			}
		} else if fe = remoteFailure(err); fe != nil && !failsOver(fe) {
			return fe
		}
		if fe != nil {
			last = fe
		}
		a.log.Named("membership").Debug(what+" through a server failed", "server", server, "error", err)
	}
	if last != nil {
		return last
	}
	return fsm.Errorf(http.StatusNotFound, "M_NOT_FOUND", "no server in the room could be reached to %s", what)
}
