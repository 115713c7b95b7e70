package fsm

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"encoding/json/jsontext"
	jsonv2 "encoding/json/v2"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"maunium.net/go/mautrix/federation/pdu"
	"maunium.net/go/mautrix/id"
)

// A scripted world for the whole-FSM tests (determinism, malformed input,
// fuzzing): a list of commands covering every op that can be built here,
// encoded once, so that two stores can be fed the very same bytes.

const (
	wServer = "test"
	wRoom   = "!det:test"
	wAlice  = "@alice:test"
	wBob    = "@bob:test"
	wCarol  = "@carol:test"
	wKeyID  = "ed25519:det"
	wVer    = id.RoomVersion("11")
)

var wSeed = sha256.Sum256([]byte("determinism test signing key"))

// scriptCmd is one command of the script; wantErr marks an expected
// refusal (still part of the log: a refusal must be deterministic too).
type scriptCmd struct {
	op      string
	payload any
	wantErr bool
}

// eventBuilder builds signed room-v11 PDUs on a linear DAG.
type eventBuilder struct {
	t     testing.TB
	priv  ed25519.PrivateKey
	depth int64
	prev  id.EventID
	ts    int64
	ids   map[string]id.EventID // name -> event ID
}

func newEventBuilder(t testing.TB) *eventBuilder {
	return &eventBuilder{t: t, priv: ed25519.NewKeyFromSeed(wSeed[:]), ts: 1700000000000, ids: map[string]id.EventID{}}
}

// build makes one event named name; auth names the auth events; extraSigs
// adds signatures of other servers (Apply does not check them, but they
// make the PDU's signatures map hold several entries).
func (b *eventBuilder) build(name, evType string, stateKey *string, sender string, content any, auth []string, extraSigs ...string) json.RawMessage {
	b.t.Helper()
	raw, err := json.Marshal(content)
	if err != nil {
		b.t.Fatal(err)
	}
	b.depth++
	b.ts++
	p := &pdu.PDU{
		AuthEvents: []id.EventID{}, Content: jsontext.Value(raw), Depth: b.depth, OriginServerTS: b.ts,
		PrevEvents: []id.EventID{}, RoomID: id.RoomID(wRoom), Sender: id.UserID(sender), StateKey: stateKey, Type: evType,
	}
	for _, a := range auth {
		p.AuthEvents = append(p.AuthEvents, b.ids[a])
	}
	if b.prev != "" {
		p.PrevEvents = append(p.PrevEvents, b.prev)
	}
	if err := p.Sign(wVer, wServer, wKeyID, b.priv); err != nil {
		b.t.Fatal(err)
	}
	for i, srv := range extraSigs {
		p.AddSignature(srv, id.KeyID(fmt.Sprintf("ed25519:k%d", i)), fmt.Sprintf("c2lnbmF0dXJl%d", i))
		p.AddSignature(srv, id.KeyID(fmt.Sprintf("ed25519:z%d", i)), fmt.Sprintf("b3RoZXI%d", i))
	}
	evID, err := p.GetEventID(wVer)
	if err != nil {
		b.t.Fatal(err)
	}
	out, err := jsonv2.Marshal(p)
	if err != nil {
		b.t.Fatal(err)
	}
	b.ids[name] = evID
	b.prev = evID
	return out
}

func sk(s string) *string { return &s }

// worldScript is the scripted history. It returns the commands and the
// event IDs by name.
func worldScript(t testing.TB) ([]scriptCmd, map[string]id.EventID) {
	b := newEventBuilder(t)
	var s []scriptCmd
	add := func(op string, payload any) { s = append(s, scriptCmd{op: op, payload: payload}) }
	refuse := func(op string, payload any) { s = append(s, scriptCmd{op: op, payload: payload, wantErr: true}) }
	dev := func(id, tok string) *NewDevice {
		return &NewDevice{DeviceID: id, DisplayName: "dev " + id, TokenHash: th(tok), IP: "127.0.0.1"}
	}

	add(OpSigningKeySet, SigningKey{KeyID: wKeyID, Seed: wSeed[:]})
	// Accounts.
	add(OpAccountRegister, RegisterCmd{UserID: wAlice, PasswordHash: ph("alice"), DisplayName: "Alice", Device: dev("A1", "ta1")})
	add(OpAccountRegister, RegisterCmd{UserID: wBob, PasswordHash: ph("bob"), Device: dev("B1", "tb1")})
	add(OpAccountRegister, RegisterCmd{UserID: wCarol, PasswordHash: ph("carol"), Admin: true})
	refuse(OpAccountRegister, RegisterCmd{UserID: wBob, PasswordHash: ph("bob")})
	for i, d := range []string{"A2", "A3", "A4"} {
		add(OpAccountLogin, LoginCmd{UserID: wAlice, PasswordHash: ph("alice"), Device: *dev(d, fmt.Sprintf("ta%d", i+2))})
	}
	add(OpAccountLogin, LoginCmd{UserID: wBob, PasswordHash: ph("bob"), Device: *dev("B2", "tb2")})
	add(OpAccountLogin, LoginCmd{UserID: wCarol, PasswordHash: ph("carol"), Device: *dev("C1", "tc1")})
	add(OpDeviceUpdate, DeviceUpdateCmd{UserID: wAlice, DeviceID: "A2", DisplayName: sk("renamed")})
	add(OpProfileSet, ProfileSetCmd{UserID: wBob, DisplayName: sk("Bob"), AvatarURL: sk("mxc://test/bob")})

	// The room: create, joins, power levels, join rules, messages, a
	// thread, a redaction of a PDU signed by several servers.
	create := b.build("create", "m.room.create", sk(""), wAlice, map[string]any{"room_version": "11"}, nil)
	aliceJoin := b.build("alice", "m.room.member", sk(wAlice), wAlice, map[string]any{"membership": "join"}, []string{"create"})
	pl := b.build("pl", "m.room.power_levels", sk(""), wAlice, map[string]any{
		"users": map[string]int{wAlice: 100}, "users_default": 0, "events_default": 0, "state_default": 50,
		"redact": 50, "ban": 50, "kick": 50, "invite": 0,
	}, []string{"create", "alice"})
	jr := b.build("jr", "m.room.join_rules", sk(""), wAlice, map[string]any{"join_rule": "public"}, []string{"create", "pl", "alice"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Create: &RoomCreate{Version: string(wVer), Creator: wAlice, Aliases: []string{"#det:test"}},
		Events: []json.RawMessage{create, aliceJoin, pl, jr}, Txn: &TxnKey{UserID: wAlice, DeviceID: "A1", Endpoint: "createRoom", TxnID: "c1"}})
	bobJoin := b.build("bob", "m.room.member", sk(wBob), wBob, map[string]any{"membership": "join", "displayname": "Bob"}, []string{"create", "pl", "jr"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{bobJoin}})
	carolJoin := b.build("carol", "m.room.member", sk(wCarol), wCarol, map[string]any{"membership": "join"}, []string{"create", "pl", "jr"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{carolJoin}})
	m1 := b.build("m1", "m.room.message", nil, wBob, map[string]any{"msgtype": "m.text", "body": "hello"},
		[]string{"create", "pl", "bob"}, "other.example", "third.example", "fourth.example")
	txn := &TxnKey{UserID: wBob, DeviceID: "B1", Endpoint: "send", TxnID: "t1"}
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{m1}, Txn: txn})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{m1}, Txn: txn}) // a retry: deduplicated
	m2 := b.build("m2", "m.room.message", nil, wAlice, map[string]any{"msgtype": "m.text", "body": "thread root"}, []string{"create", "pl", "alice"})
	m3 := b.build("m3", "m.room.message", nil, wBob, map[string]any{"msgtype": "m.text", "body": "reply",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": string(b.ids["m2"])}}, []string{"create", "pl", "bob"}, "other.example")
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{m2, m3}})
	red := b.build("red", "m.room.redaction", nil, wAlice, map[string]any{"redacts": string(b.ids["m1"])}, []string{"create", "pl", "alice"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{red}})
	red2 := b.build("red2", "m.room.redaction", nil, wAlice, map[string]any{"redacts": string(b.ids["m3"])}, []string{"create", "pl", "alice"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{red2}})
	topic := b.build("topic", "m.room.topic", sk(""), wAlice, map[string]any{"topic": "determinism"}, []string{"create", "pl", "alice"})
	add(OpRoomEvents, RoomEventsCmd{RoomID: wRoom, Events: []json.RawMessage{topic}})
	add(OpAliasPut, AliasCmd{Alias: "#other:test", RoomID: wRoom, Creator: wAlice})
	refuse(OpAliasPut, AliasCmd{Alias: "#other:test", RoomID: wRoom, Creator: wAlice})
	add(OpAliasDelete, AliasCmd{Alias: "#other:test"})
	add(OpRoomPublish, PublishCmd{RoomID: wRoom, Published: true})

	// Receipts and read markers, threaded and not.
	add(OpReceiptPut, ReceiptPut{RoomID: wRoom, UserID: wBob, FullyRead: string(b.ids["m2"]), Receipts: []ReceiptMark{
		{Type: ReceiptRead, EventID: string(b.ids["m2"])}, {Type: ReceiptReadPrivate, EventID: string(b.ids["m3"])},
		{Type: ReceiptRead, EventID: string(b.ids["m3"]), ThreadID: string(b.ids["m2"])}}})
	add(OpReceiptPut, ReceiptPut{RoomID: wRoom, UserID: wAlice, Receipts: []ReceiptMark{{Type: ReceiptRead, EventID: string(b.ids["topic"])}}})

	// Account data, filters, push rules, pushers.
	add(OpAccountDataPut, AccountDataPut{UserID: wAlice, Type: "m.direct", Content: json.RawMessage(`{"@bob:test": ["!det:test"]}`)})
	add(OpAccountDataPut, AccountDataPut{UserID: wAlice, RoomID: wRoom, Type: "m.tag", Content: json.RawMessage(`{"tags":{"u.work":{"order":0.5}}}`)})
	add(OpAccountDataPut, AccountDataPut{UserID: wAlice, Type: "m.direct", Content: json.RawMessage(`{"@carol:test":[]}`)})
	add(OpFilterCreate, FilterCreate{UserID: wAlice, Filter: json.RawMessage(`{"room": {"timeline": {"limit": 10}}, "presence": {"types": []}}`)})
	add(OpFilterCreate, FilterCreate{UserID: wBob, Filter: json.RawMessage(`{}`)})
	defaults := json.RawMessage(`{"global":{"override":[{"rule_id":".m.rule.master","default":true,"enabled":false,"actions":[]}],"content":[],"room":[],"sender":[],"underride":[]}}`)
	add(OpPushRulesUpdate, PushRulesUpdate{UserID: wAlice, Change: PushRulePut, Kind: "room", RuleID: wRoom,
		Rule: &PushRule{Actions: json.RawMessage(`["notify"]`)}, Defaults: defaults})
	add(OpPushRulesUpdate, PushRulesUpdate{UserID: wAlice, Change: PushRulePut, Kind: "content", RuleID: "kw",
		Rule: &PushRule{Actions: json.RawMessage(`["notify",{"set_tweak":"highlight"}]`), Pattern: sk("cake")}, Defaults: defaults})
	add(OpPushRulesUpdate, PushRulesUpdate{UserID: wAlice, Change: PushRuleEnabled, Kind: "room", RuleID: wRoom, Enabled: false, Defaults: defaults})
	add(OpPushRulesUpdate, PushRulesUpdate{UserID: wAlice, Change: PushRuleActions, Kind: "content", RuleID: "kw", Actions: json.RawMessage(`[]`), Defaults: defaults})
	add(OpPushRulesUpdate, PushRulesUpdate{UserID: wAlice, Change: PushRuleDelete, Kind: "room", RuleID: wRoom, Defaults: defaults})
	pusher := func(key string, dev string) PusherRecord {
		return PusherRecord{Pushkey: key, Kind: "http", AppID: "app", AppDisplayName: "App", DeviceDisplayName: dev,
			Lang: "en", Data: json.RawMessage(`{"url": "https://push.example/_matrix/push/v1/notify"}`), DeviceID: dev}
	}
	add(OpPusherSet, PusherSet{UserID: wAlice, Pusher: pusher("k1", "A1")})
	add(OpPusherSet, PusherSet{UserID: wBob, Pusher: pusher("k1", "B1"), Append: true})
	add(OpPusherSet, PusherSet{UserID: wCarol, Pusher: pusher("k1", "C1")}) // takes k1 from alice and bob
	add(OpPusherSet, PusherSet{UserID: wAlice, Pusher: pusher("k2", "A3")})
	add(OpPusherSet, PusherSet{UserID: wAlice, Pusher: PusherRecord{Pushkey: "k2", AppID: "app"}, Delete: true})

	// E2EE: device keys, several one-time and fallback keys, claims,
	// cross-signing, signatures, key backup.
	for _, u := range []struct{ user, dev string }{{wAlice, "A1"}, {wAlice, "A2"}, {wBob, "B1"}, {wBob, "B2"}, {wCarol, "C1"}} {
		otks := map[string]json.RawMessage{}
		for i := 0; i < 5; i++ {
			otks[fmt.Sprintf("signed_curve25519:%s%d", u.dev, i)] = json.RawMessage(fmt.Sprintf(`{"key":"k%s%d"}`, u.dev, i))
		}
		add(OpKeysUpload, KeysUpload{UserID: u.user, DeviceID: u.dev, DeviceKeys: deviceKeysJSON(u.user, u.dev, "c"+u.dev),
			OneTimeKeys: otks, FallbackKeys: map[string]json.RawMessage{"signed_curve25519:F" + u.dev: json.RawMessage(`{"key":"fb","fallback":true}`)}})
	}
	add(OpKeysClaim, KeysClaim{Claims: map[string]map[string]string{
		wAlice: {"A1": "signed_curve25519", "A2": "signed_curve25519", "nope": "signed_curve25519"},
		wBob:   {"B1": "signed_curve25519", "B2": "signed_curve25519"}, wCarol: {"C1": "signed_curve25519"},
		"@remote:else": {"X": "signed_curve25519"}}})
	for i := 0; i < 6; i++ { // exhaust A1's one-time keys, then its fallback key
		add(OpKeysClaim, KeysClaim{Claims: map[string]map[string]string{wAlice: {"A1": "signed_curve25519"}}})
	}
	csKey := func(usage, pub string) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`{"keys":{"ed25519:%s":"%s"},"usage":["%s"],"user_id":"%s"}`, pub, pub, usage, wAlice))
	}
	add(OpCrossSigningUpload, CrossSigningUpload{UserID: wAlice, Keys: map[string]json.RawMessage{
		UsageMaster: csKey("master", "MSK"), UsageSelfSigning: csKey("self_signing", "SSK"), UsageUserSigning: csKey("user_signing", "USK")}})
	add(OpSignaturesUpload, SignaturesUpload{Signer: wAlice, Entries: []SignatureEntry{
		{TargetUser: wAlice, TargetKey: "A1", SignerKeyID: "ed25519:SSK", Signature: "s1"},
		{TargetUser: wAlice, TargetKey: "A2", SignerKeyID: "ed25519:SSK", Signature: "s2"},
		{TargetUser: wAlice, TargetKey: "MSK", SignerKeyID: "ed25519:A1", Signature: "s3"},
		{TargetUser: wBob, TargetKey: "B1", SignerKeyID: "ed25519:USK", Signature: "s4"}}})
	add(OpBackupCreate, BackupVersionCmd{UserID: wAlice, Algorithm: "m.megolm_backup.v1.curve25519-aes-sha2", AuthData: json.RawMessage(`{"public_key":"pk"}`)})
	backupVersion := fmt.Sprint(len(s)) // the version is the creating entry's index
	add(OpBackupUpdate, BackupVersionCmd{UserID: wAlice, Version: backupVersion, Algorithm: "m.megolm_backup.v1.curve25519-aes-sha2", AuthData: json.RawMessage(`{"public_key":"pk2"}`)})
	keys := map[string]map[string]KeyBackupData{}
	for r := 0; r < 3; r++ {
		room := fmt.Sprintf("!r%d:test", r)
		keys[room] = map[string]KeyBackupData{}
		for sIdx := 0; sIdx < 4; sIdx++ {
			keys[room][fmt.Sprintf("s%d", sIdx)] = KeyBackupData{FirstMessageIndex: int64(sIdx), SessionData: json.RawMessage(`{"ciphertext": "c"}`)}
		}
	}
	add(OpBackupPutKeys, BackupPutKeys{UserID: wAlice, Version: backupVersion, Rooms: keys})
	add(OpBackupDeleteKeys, BackupDeleteKeys{UserID: wAlice, Version: backupVersion, RoomID: "!r1:test"})
	add(OpBackupDeleteKeys, BackupDeleteKeys{UserID: wAlice, Version: backupVersion, RoomID: "!r2:test", SessionID: "s0"})
	add(OpBackupCreate, BackupVersionCmd{UserID: wBob, Algorithm: "alg", AuthData: json.RawMessage(`{}`)})
	add(OpBackupDelete, BackupVersionCmd{UserID: wBob, Version: fmt.Sprint(len(s))})

	// To-device: several users and devices, "*", an explicit device
	// overriding "*", unknown and remote targets, a retried txn, acks.
	add(OpToDeviceSend, ToDeviceSend{Sender: wAlice, Type: "m.room_key_request", Messages: map[string]map[string]json.RawMessage{
		wAlice: {"*": json.RawMessage(`{"n": 1}`), "A2": json.RawMessage(`{"n": 2}`)},
		wBob:   {"B1": json.RawMessage(`{"n":3}`), "B2": json.RawMessage(`{"n":4}`), "B9": json.RawMessage(`{"n":5}`)},
		wCarol: {"*": json.RawMessage(`{"n":6}`)}, "@remote:else": {"*": json.RawMessage(`{}`)}},
		Txn: &TxnKey{UserID: wAlice, DeviceID: "A1", Endpoint: ToDeviceEndpoint, TxnID: "td1"}})
	add(OpToDeviceSend, ToDeviceSend{Sender: wAlice, Type: "m.room_key_request", Messages: map[string]map[string]json.RawMessage{
		wBob: {"*": json.RawMessage(`{"n": 99}`)}}, Txn: &TxnKey{UserID: wAlice, DeviceID: "A1", Endpoint: ToDeviceEndpoint, TxnID: "td1"}})
	add(OpToDeviceSend, ToDeviceSend{Sender: wBob, Type: "m.dummy", Messages: map[string]map[string]json.RawMessage{
		wAlice: {"*": json.RawMessage(`{}`)}, wBob: {"*": json.RawMessage(`{}`)}}})
	add(OpToDeviceAck, ToDeviceAck{UserID: wAlice, DeviceID: "A2", UpTo: MaxPosAt(uint64(len(s)))})

	// OpenID and media.
	// Bob's token expires just after it is issued; Alice's, later, prunes it.
	add(OpOpenIDIssue, OpenIDIssueCmd{UserID: wBob, TokenHash: th("oid2"), ExpiresTS: 1700000000000 + int64(len(s)) + 1})
	add(OpMediaCreate, MediaCreate{MediaID: "reserved1", UserID: wAlice, ExpiresTS: 1800000000000})
	chunk := make([]byte, MediaChunkSize)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	add(OpMediaChunk, MediaChunk{Blob: "blob1", UserID: wAlice, Index: 0, Data: chunk})
	add(OpMediaChunk, MediaChunk{Blob: "blob1", UserID: wAlice, Index: 1, Data: []byte("tail")})
	add(OpMediaCommit, MediaCommit{MediaID: "reserved1", Blob: "blob1", UserID: wAlice, Reserved: true, ContentType: "application/octet-stream",
		Size: MediaChunkSize + 4, SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte("x"))), Chunks: 2})
	add(OpMediaChunk, MediaChunk{Blob: "blob2", UserID: wBob, Index: 0, Data: []byte("short")})
	add(OpMediaCommit, MediaCommit{MediaID: "plain2", Blob: "blob2", UserID: wBob, Size: 5, SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte("short"))), Chunks: 1})
	add(OpMediaChunk, MediaChunk{Blob: "blob3", UserID: wBob, Index: 0, Data: []byte("aborted")})
	add(OpMediaAbort, MediaAbort{Blob: "blob3", UserID: wBob})
	add(OpOpenIDIssue, OpenIDIssueCmd{UserID: wAlice, TokenHash: th("oid1"), ExpiresTS: 1700000000000 + 3600_000})

	// Devices going away: several at once, all of a user, a password
	// change keeping one, deactivation; a forget after leaving.
	add(OpDeviceDelete, DeviceDeleteCmd{UserID: wAlice, DeviceIDs: []string{"A3", "A4", "nope"}})
	add(OpAccountSetPassword, SetPasswordCmd{UserID: wBob, PasswordHash: ph("bob2"), LogoutDevices: true, KeepDevice: "B2"})
	add(OpAccountLogout, LogoutCmd{UserID: wBob, DeviceID: "B2"})
	add(OpAccountLogoutAll, LogoutAllCmd{UserID: wAlice})
	add(OpRoomForget, ForgetCmd{UserID: wCarol, RoomID: "!gone:test"})
	add(OpClusterRemoveNode, RemoveNodeCmd{NodeID: "node9"})
	add(OpClusterRemoveNode, RemoveNodeCmd{NodeID: "node9"}) // a retry: keeps the first tombstone
	add(OpAccountDeactivate, DeactivateCmd{UserID: wCarol, Erase: true})
	// Federation: a remote join built on an older event forks the DAG and
	// the room's state is resolved.
	b.prev = b.ids["carol"]
	dave := b.build("dave", "m.room.member", sk("@dave:remote.example"), "@dave:remote.example",
		map[string]any{"membership": "join"}, []string{"create", "pl", "jr"})
	add(OpRoomRemote, RemoteEventsCmd{RoomID: wRoom, Events: []json.RawMessage{dave}})
	// An invite to a room this server is not in, and its rejection.
	add(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: "11", Event: farMember(t, b, rDave, wBob, "invite", nil)})
	add(OpRoomInviteRemote, RemoteInviteCmd{RoomID: farRoom, Version: "11", Event: farMember(t, b, wBob, wBob, "leave", nil)})
	// Federation outbox: queue, a transaction (retried, conflicting),
	// backoff, done, catch-up.
	add(OpFedEnqueue, FedEnqueueCmd{Destinations: []string{"remote.example", "other.example"},
		EventIDs: []string{string(b.ids["m2"]), string(b.ids["topic"])}, EDUs: []json.RawMessage{json.RawMessage(`{"edu_type":"m.receipt","content":{}}`)}})
	fedUpto := MaxPosAt(uint64(len(s)))
	add(OpFedTxnStart, FedTxnStartCmd{Dest: "remote.example", TxnID: "ft1", UptoPos: fedUpto})
	refuse(OpFedTxnStart, FedTxnStartCmd{Dest: "remote.example", TxnID: "ft2", UptoPos: fedUpto})
	add(OpFedDestBackoff, FedDestBackoffCmd{Dest: "remote.example", Failures: 2, NextRetryTS: 1700000100000})
	add(OpFedTxnDone, FedTxnDoneCmd{Dest: "remote.example", TxnID: "ft1"})
	add(OpFedCatchUp, FedCatchUpCmd{Dest: "other.example", UptoPos: fedUpto, KeepPerRoom: 1})
	// Inbound transaction answers: recorded, a retry returns the first.
	add(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: "in1", Response: json.RawMessage(`{"pdus":{}}`)})
	add(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: "in1", Response: json.RawMessage(`{"pdus":{"$x":{}}}`)})
	refuse(OpFedInboundTxn, FedInboundTxnCmd{Origin: "remote.example", TxnID: "in2", Response: json.RawMessage(`[]`)})
	return s, b.ids
}

// encodeScript encodes every command once; the TS of entry i (index i+1)
// is fixed, so the bytes are the same for every store.
func encodeScript(t testing.TB, script []scriptCmd) [][]byte {
	t.Helper()
	out := make([][]byte, len(script))
	for i, c := range script {
		data, err := Encode(c.op, 1700000000000+int64(i), c.payload)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = data
	}
	return out
}

// newWorldFSM opens a fresh store in dir.
func newWorldFSM(t testing.TB, dir string) *FSM {
	t.Helper()
	st, err := OpenStore(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(st, hclog.NewNullLogger())
}

// applyScript applies the encoded entries in batches of batch entries and
// returns the results as JSON (value or error), one per entry.
func applyScript(t testing.TB, f *FSM, script []scriptCmd, data [][]byte, batch int) []string {
	t.Helper()
	var out []string
	for start := 0; start < len(data); start += batch {
		end := min(start+batch, len(data))
		logs := make([]*raft.Log, 0, end-start)
		for i := start; i < end; i++ {
			logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data[i]})
		}
		for j, r := range f.ApplyBatch(logs) {
			i := start + j
			res := r.(Result)
			if (res.Err != nil) != script[i].wantErr {
				t.Fatalf("entry %d (%s): err = %v, want error %v", i+1, script[i].op, res.Err, script[i].wantErr)
			}
			v, err := json.Marshal(res.Value)
			if err != nil {
				t.Fatalf("entry %d (%s): result does not marshal: %v", i+1, script[i].op, err)
			}
			out = append(out, fmt.Sprintf("%s %v", v, res.Err))
		}
	}
	return out
}
