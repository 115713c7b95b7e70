package rooms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"

	"github.com/ganglion/ganglion/fsm"
)

// CreateRoomRequest is the parsed body of POST /createRoom.
type CreateRoomRequest struct {
	Creator            string
	Visibility         string
	Preset             string
	Name, Topic        string
	HasName, HasTopic  bool
	AliasLocalpart     string
	Invite             []string
	InitialState       []StateEventSpec
	PowerLevelOverride json.RawMessage
	CreationContent    json.RawMessage
	RoomVersion        string
	IsDirect           bool
}

// StateEventSpec is one initial_state entry.
type StateEventSpec struct {
	Type     string          `json:"type"`
	StateKey string          `json:"state_key"`
	Content  json.RawMessage `json:"content"`
}

// SupportedVersions are the room versions this server creates: v3 and
// later, whose event IDs are reference hashes (mautrix's pdu.PDU does not
// build v1/v2 events). Older ones matter to clients and Complement (knocking
// is tested in v7 rooms).
var SupportedVersions = map[id.RoomVersion]bool{"3": true, "4": true, "5": true, "6": true, "7": true,
	"8": true, "9": true, "10": true, "11": true, "12": true}

// CreateRoom builds every initial event on a fresh head and commits them in
// one command (one Raft entry, consecutive stream positions).
func (s *Service) CreateRoom(ctx context.Context, req CreateRoomRequest) (string, error) {
	ver := s.defaultVersion
	if req.RoomVersion != "" {
		ver = id.RoomVersion(req.RoomVersion)
	}
	if !SupportedVersions[ver] {
		return "", fsm.Errorf(http.StatusBadRequest, "M_UNSUPPORTED_ROOM_VERSION", "room version %q is not supported", req.RoomVersion)
	}
	preset := req.Preset
	if preset == "" {
		preset = "private_chat"
		if req.Visibility == "public" {
			preset = "public_chat"
		}
	}
	var alias string
	if req.AliasLocalpart != "" {
		alias = "#" + req.AliasLocalpart + ":" + s.serverName
	}
	h := &roomHead{version: ver, creator: req.Creator, loaded: true,
		state: map[pdu.StateKey]id.EventID{}, pdus: map[id.EventID]*pdu.PDU{}}
	if !ver.RoomIDIsCreateEventID() {
		h.roomID = "!" + randomString(18) + ":" + s.serverName
	}
	ts := s.createTS()
	var raws []json.RawMessage
	add := func(evType, stateKey string, content any) error {
		raw, err := toRaw(content)
		if err != nil {
			return err
		}
		sk := stateKey
		p, evID, built, err := s.build(h, EventSpec{Type: evType, StateKey: &sk, Sender: req.Creator, Content: raw}, ts)
		if err != nil {
			return err
		}
		if evType == "m.room.create" && ver.RoomIDIsCreateEventID() {
			h.roomID = "!" + strings.TrimPrefix(string(evID), "$")
		}
		h.advance(p, evID)
		raws = append(raws, built)
		return nil
	}
	err := s.buildInitialEvents(req, ver, preset, alias, add)
	var fe *fsm.Error
	if errors.As(err, &fe) && fe.Errcode == "M_FORBIDDEN" {
		// The requested initial state contradicts itself (e.g. a power
		// level override that forbids the creator to set the name).
		return "", fsm.Errorf(http.StatusBadRequest, "M_INVALID_ROOM_STATE", "%s", fe.Message)
	}
	if err != nil {
		return "", err
	}
	// Register the head before proposing so sends to the new room wait on it.
	s.headsMu.Lock()
	s.heads[h.roomID] = h
	h.mu.Lock()
	s.headsMu.Unlock()
	fut, err := s.node.ProposeAsync(fsm.OpRoomEvents, fsm.RoomEventsCmd{RoomID: h.roomID, Events: raws,
		Create: &fsm.RoomCreate{Version: string(ver), Creator: req.Creator, Aliases: nonEmpty(alias),
			Published: req.Visibility == "public"}})
	if err != nil {
		h.stale = true
		h.mu.Unlock()
		return "", err
	}
	h.last = fut
	h.mu.Unlock()
	if _, _, err := fut.Wait(ctx); err != nil {
		s.markStale(h.roomID)
		return "", err
	}
	for _, inv := range req.Invite {
		if !s.isRemoteUser(inv) {
			continue
		}
		if _, err := s.Membership(ctx, MembershipRequest{RoomID: h.roomID, Sender: req.Creator, Target: inv,
			Membership: "invite", IsDirect: req.IsDirect}); err != nil {
			s.log.Warn("inviting a remote user to a new room failed", "room", h.roomID, "user", inv, "error", err)
		}
	}
	return h.roomID, nil
}

// isRemoteUser reports a user of another server.
func (s *Service) isRemoteUser(userID string) bool {
	_, server, err := id.UserID(userID).Parse()
	return err == nil && server != s.serverName
}

// createTS hands out strictly increasing timestamps for create events: in
// room versions 12+ the room ID is the create event's hash, so two rooms
// created by one user in the same millisecond with the same content would
// otherwise get the same ID.
func (s *Service) createTS() int64 {
	s.createMu.Lock()
	defer s.createMu.Unlock()
	ts := time.Now().UnixMilli()
	if ts <= s.lastCreateTS {
		ts = s.lastCreateTS + 1
	}
	s.lastCreateTS = ts
	return ts
}

func (s *Service) buildInitialEvents(req CreateRoomRequest, ver id.RoomVersion, preset, alias string, add func(string, string, any) error) error {
	create := map[string]any{}
	if len(req.CreationContent) > 0 {
		if err := json.Unmarshal(req.CreationContent, &create); err != nil || create == nil {
			return fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "creation_content must be an object")
		}
	}
	create["room_version"] = string(ver)
	if ver.CreatorInContent() {
		create["creator"] = req.Creator
	}
	if ver.PrivilegedRoomCreators() && preset == "trusted_private_chat" && len(req.Invite) > 0 {
		extra, _ := create["additional_creators"].([]any)
		seen := map[string]bool{}
		for _, e := range extra {
			if s, ok := e.(string); ok {
				seen[s] = true
			}
		}
		for _, inv := range req.Invite {
			if !seen[inv] && inv != req.Creator {
				extra = append(extra, inv)
				seen[inv] = true
			}
		}
		create["additional_creators"] = extra
	}
	if err := add("m.room.create", "", create); err != nil {
		return err
	}
	dn, av := s.profile(req.Creator)
	member := map[string]any{"membership": "join"}
	if dn != "" {
		member["displayname"] = dn
	}
	if av != "" {
		member["avatar_url"] = av
	}
	if err := add("m.room.member", req.Creator, member); err != nil {
		return err
	}
	pl, err := defaultPowerLevels(req, ver, preset)
	if err != nil {
		return err
	}
	if err := add("m.room.power_levels", "", pl); err != nil {
		return err
	}
	if alias != "" {
		if err := add("m.room.canonical_alias", "", map[string]any{"alias": alias}); err != nil {
			return err
		}
	}
	joinRule, guest := "invite", "can_join"
	if preset == "public_chat" {
		joinRule, guest = "public", "forbidden"
	}
	set := map[[2]string]bool{}
	for _, st := range req.InitialState {
		set[[2]string{st.Type, st.StateKey}] = true
	}
	presetEvents := []struct{ t, k, v string }{
		{"m.room.join_rules", "join_rule", joinRule},
		{"m.room.history_visibility", "history_visibility", "shared"},
		{"m.room.guest_access", "guest_access", guest},
	}
	for _, pe := range presetEvents {
		if set[[2]string{pe.t, ""}] {
			continue // initial_state overrides the preset
		}
		if err := add(pe.t, "", map[string]any{pe.k: pe.v}); err != nil {
			return err
		}
	}
	for _, st := range req.InitialState {
		if err := add(st.Type, st.StateKey, st.Content); err != nil {
			return err
		}
	}
	if req.HasName {
		if err := add("m.room.name", "", map[string]any{"name": req.Name}); err != nil {
			return err
		}
	}
	if req.HasTopic {
		if err := add("m.room.topic", "", topicContent(req.Topic)); err != nil {
			return err
		}
	}
	for _, inv := range req.Invite {
		if s.isRemoteUser(inv) {
			continue // invited after the room commits, through their server
		}
		c := map[string]any{"membership": "invite"}
		if dn, av := s.profile(inv); dn != "" || av != "" {
			if dn != "" {
				c["displayname"] = dn
			}
			if av != "" {
				c["avatar_url"] = av
			}
		}
		if req.IsDirect {
			c["is_direct"] = true
		}
		if err := add("m.room.member", inv, c); err != nil {
			return err
		}
	}
	return nil
}

func topicContent(topic string) map[string]any {
	return map[string]any{"topic": topic, "m.topic": map[string]any{
		"m.text": []any{map[string]any{"body": topic, "mimetype": "text/plain"}}}}
}

func defaultPowerLevels(req CreateRoomRequest, ver id.RoomVersion, preset string) (map[string]any, error) {
	users := map[string]any{}
	tombstone := 100
	if !ver.PrivilegedRoomCreators() {
		users[req.Creator] = 100
		if preset == "trusted_private_chat" {
			for _, inv := range req.Invite {
				users[inv] = 100
			}
		}
	} else {
		tombstone = 150
	}
	pl := map[string]any{
		"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
		"ban": 50, "kick": 50, "redact": 50, "invite": 0,
		"events": map[string]any{
			"m.room.name": 50, "m.room.power_levels": 100, "m.room.history_visibility": 100,
			"m.room.canonical_alias": 50, "m.room.avatar": 50, "m.room.tombstone": tombstone,
			"m.room.server_acl": 100, "m.room.encryption": 100,
		},
		"notifications": map[string]any{"room": 50},
	}
	if len(req.PowerLevelOverride) > 0 {
		var over map[string]any
		if err := json.Unmarshal(req.PowerLevelOverride, &over); err != nil || over == nil {
			return nil, fsm.Errorf(http.StatusBadRequest, "M_BAD_JSON", "power_level_content_override must be an object")
		}
		for k, v := range over {
			pl[k] = v
		}
	}
	return pl, nil
}

func toRaw(v any) (json.RawMessage, error) {
	if r, ok := v.(json.RawMessage); ok {
		if len(r) == 0 {
			return json.RawMessage("{}"), nil
		}
		return r, nil
	}
	raw, err := json.Marshal(v)
	return raw, err
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
