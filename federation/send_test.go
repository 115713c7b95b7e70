package federation

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"maunium.net/go/mautrix/federation/pdu"

	"github.com/ganglion/ganglion/fsm"
)

func TestSendJoinThenMessage(t *testing.T) {
	r := newFedRoom(t)
	msg, raw := r.message(t, "hello")
	wantAccepted(t, r.f.send(t, r.n, "m1", []json.RawMessage{raw}), msg)
	tl := r.n.timeline(r.roomID)
	if !slices.Contains(tl, r.join) || tl[len(tl)-1] != msg {
		t.Fatalf("timeline %v lacks the join or does not end with the message %s", tl, msg)
	}
}

// TestSendRefusesBadPDUs is the list of bad input: each PDU gets an
// error in the answer, and none reaches the timeline or current state.
func TestSendRefusesBadPDUs(t *testing.T) {
	r := newFedRoom(t)
	other := newFakeServer(t, r.pki)
	stateBefore := r.currentStateIDs()
	tlBefore := r.n.timeline(r.roomID)

	unsigned, unsignedRaw := r.message(t, "unsigned", func(s *evSpec) {
		s.post = func(p *pdu.PDU) { p.Signatures = nil }
	})
	badSig, badSigRaw := r.message(t, "bad signature", func(s *evSpec) {
		s.post = func(p *pdu.PDU) {
			for k, v := range p.Signatures[r.f.name] {
				// Change the first character, whatever it is.
				c := "A"
				if v[0] == 'A' {
					c = "B"
				}
				p.Signatures[r.f.name][k] = c + v[1:]
			}
		}
	})
	// bob's event signed by another server's key only.
	wrongServer, wrongServerRaw := other.build(t, r.n, r.roomID, evSpec{sender: r.bob, typ: "m.room.message",
		content: map[string]any{"body": "signed by the wrong server"}})
	big, bigRaw := r.message(t, strings.Repeat("x", MaxPDUBytes))
	// bob may not change the power levels (public_chat gives him 0).
	pl, plRaw := r.f.build(t, r.n, r.roomID, evSpec{sender: r.bob, typ: "m.room.power_levels", stateKey: sk(""),
		content: map[string]any{"users": map[string]int{r.bob: 100}}})
	// carol never joined.
	carol := r.f.user("carol")
	notJoined, notJoinedRaw := r.f.build(t, r.n, r.roomID, evSpec{sender: carol, typ: "m.room.message",
		content: map[string]any{"body": "not joined"}})

	res := r.f.send(t, r.n, "bad", []json.RawMessage{unsignedRaw, badSigRaw, wrongServerRaw, bigRaw, plRaw, notJoinedRaw})
	wantRefused(t, res, unsigned, "signature")
	wantRefused(t, res, badSig, "signature")
	wantRefused(t, res, wrongServer, "signature")
	wantRefused(t, res, big, "larger than 65536")
	wantRefused(t, res, pl, "not allowed")
	wantRefused(t, res, notJoined, "not allowed")

	if got := r.currentStateIDs(); !slices.Equal(got, stateBefore) {
		t.Errorf("current state changed:\n%v\nwas\n%v", got, stateBefore)
	}
	if got := r.n.timeline(r.roomID); !slices.Equal(got, tlBefore) {
		t.Errorf("timeline changed: %v, was %v", got, tlBefore)
	}
	for _, evID := range []string{unsigned, badSig, wrongServer, big} {
		if r.n.event(r.roomID, evID) != nil {
			t.Errorf("event %s with bad signature or size was stored", evID)
		}
	}
	// The room still works for both sides.
	msg, raw := r.message(t, "still here")
	wantAccepted(t, r.f.send(t, r.n, "after", []json.RawMessage{raw}), msg)
	r.localSend(t, "m.room.message", nil, `{"msgtype":"m.text","body":"local still works"}`)
}

// TestSendBadContentHashStoresRedacted: a PDU whose content does not match
// its hash is kept in its redacted form.
func TestSendBadContentHashStoresRedacted(t *testing.T) {
	r := newFedRoom(t)
	evID, raw := r.message(t, "original", func(s *evSpec) {
		s.post = func(p *pdu.PDU) { p.Content = []byte(`{"msgtype":"m.text","body":"tampered"}`) }
	})
	wantAccepted(t, r.f.send(t, r.n, "hash", []json.RawMessage{raw}), evID)
	rec := r.n.event(r.roomID, evID)
	if rec == nil {
		t.Fatal("event not stored")
	}
	if c := gjson.GetBytes(rec.PDU, "content").Raw; c != "{}" {
		t.Fatalf("stored content %s, want the redacted {}", c)
	}
}

// TestSendTransactionLimits: more than 50 PDUs or 100 EDUs is refused whole.
func TestSendTransactionLimits(t *testing.T) {
	r := newFedRoom(t)
	_, raw := r.message(t, "one")
	pdus := make([]json.RawMessage, 51)
	for i := range pdus {
		pdus[i] = raw
	}
	edus := make([]map[string]any, 101)
	for i := range edus {
		edus[i] = map[string]any{"edu_type": "m.presence", "content": map[string]any{"push": []any{}}}
	}
	for name, body := range map[string]map[string]any{
		"51 PDUs":  {"origin": r.f.name, "origin_server_ts": 1, "pdus": pdus},
		"101 EDUs": {"origin": r.f.name, "origin_server_ts": 1, "pdus": []any{}, "edus": edus},
	} {
		status, resp := r.f.request(t, r.n, put, fedV1+"/send/"+strings.ReplaceAll(name, " ", ""), body)
		if status != http.StatusBadRequest || resp["errcode"] != "M_BAD_JSON" {
			t.Errorf("%s: %d %v, want 400 M_BAD_JSON", name, status, resp)
		}
	}
	status, resp := r.f.request(t, r.n, put, fedV1+"/send/notjson", "x")
	if status != http.StatusBadRequest {
		t.Errorf("a transaction that is not an object: %d %v", status, resp)
	}
}

// TestSendRetryGivesTheSameAnswer: a retried transaction gets the stored
// answer, even with another body, and stores nothing twice.
func TestSendRetryGivesTheSameAnswer(t *testing.T) {
	r := newFedRoom(t)
	good, goodRaw := r.message(t, "good")
	bad, badRaw := r.f.build(t, r.n, r.roomID, evSpec{sender: r.bob, typ: "m.room.power_levels", stateKey: sk(""),
		content: map[string]any{"users": map[string]int{r.bob: 100}}})
	first := r.f.send(t, r.n, "retry", []json.RawMessage{goodRaw, badRaw})
	wantAccepted(t, first, good)
	wantRefused(t, first, bad, "not allowed")
	tl := r.n.timeline(r.roomID)

	again := r.f.send(t, r.n, "retry", []json.RawMessage{goodRaw, badRaw})
	if fmt.Sprint(again) != fmt.Sprint(first) {
		t.Errorf("retry answered %v, first %v", again, first)
	}
	other, otherRaw := r.message(t, "a different body under the same txnId")
	third := r.f.send(t, r.n, "retry", []json.RawMessage{otherRaw})
	if fmt.Sprint(third) != fmt.Sprint(first) {
		t.Errorf("same txnId, other body: %v, want the first answer %v", third, first)
	}
	if r.n.event(r.roomID, other) != nil {
		t.Error("the body of a retried transaction was processed")
	}
	if got := r.n.timeline(r.roomID); !slices.Equal(got, tl) {
		t.Errorf("retries changed the timeline: %v, was %v", got, tl)
	}
	r.n.view(func(rt *fsm.ReadTx) {
		if rt.InboundTxnResult(r.f.name, "retry") == nil {
			t.Error("the answer is not in the store")
		}
	})
}

// TestSendUnknownRoomAndACL: PDUs for a room the node is not in, and from a
// server the room's ACL denies, are refused.
func TestSendUnknownRoomAndACL(t *testing.T) {
	r := newFedRoom(t)
	_, raw := r.message(t, "elsewhere")
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj)
	obj["room_id"] = "!unknown:" + r.f.name
	raw, _ = json.Marshal(obj)
	res := r.f.send(t, r.n, "unknown", []json.RawMessage{raw})
	if len(res) != 1 {
		t.Fatalf("answer %v, want one refused PDU", res)
	}
	for evID := range res {
		wantRefused(t, res, evID, "unknown room")
	}

	r.localSend(t, "m.room.server_acl", sk(""), `{"allow":["*"],"deny":["localhost"],"allow_ip_literals":false}`)
	msg, raw := r.message(t, "denied")
	wantRefused(t, r.f.send(t, r.n, "acl", []json.RawMessage{raw}), msg, "server ACL")
	if r.n.event(r.roomID, msg) != nil {
		t.Error("an event from a denied server was stored")
	}
}
