package clientapi

import (
	"slices"
	"testing"
	"time"
)

func TestEphemeralTyping(t *testing.T) {
	e := newEphemeral()
	s0 := e.Serial()
	woke := e.Changed()
	e.SetTyping("!r", "@b", true, time.Minute)
	e.SetTyping("!r", "@a", true, time.Minute)
	select {
	case <-woke:
	default:
		t.Fatal("Changed channel not closed by a typing start")
	}
	if got := e.Typing("!r"); !slices.Equal(got, []string{"@a", "@b"}) {
		t.Fatalf("Typing = %v", got)
	}
	s1 := e.Serial()
	if s1 <= s0 || !e.TypingChangedSince("!r", s0) || e.TypingChangedSince("!r", s1) || e.TypingChangedSince("!other", s0) {
		t.Fatalf("serials: s0=%d s1=%d", s0, s1)
	}
	// Extending a running timeout is not a change.
	e.SetTyping("!r", "@a", true, time.Minute)
	if e.Serial() != s1 {
		t.Fatal("extension bumped the serial")
	}
	e.SetTyping("!r", "@a", false, 0)
	if got := e.Typing("!r"); !slices.Equal(got, []string{"@b"}) || !e.TypingChangedSince("!r", s1) {
		t.Fatalf("after stop: %v", got)
	}
	// Stopping someone who is not typing changes nothing.
	s2 := e.Serial()
	e.SetTyping("!r", "@nobody", false, 0)
	if e.Serial() != s2 {
		t.Fatal("no-op stop bumped the serial")
	}
}

func TestEphemeralTypingExpires(t *testing.T) {
	e := newEphemeral()
	e.SetTyping("!r", "@a", true, 100*time.Millisecond)
	s := e.Serial()
	woke := e.Changed()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("expiry did not wake waiters")
	}
	if got := e.Typing("!r"); len(got) != 0 || !e.TypingChangedSince("!r", s) {
		t.Fatalf("after expiry: %v", got)
	}
}

func TestEphemeralPresence(t *testing.T) {
	e := newEphemeral()
	now := time.UnixMilli(1_700_000_000_000)
	e.now = func() time.Time { return now }
	if _, ok := e.Presence("@a"); ok {
		t.Fatal("presence before any was set")
	}
	s0 := e.Serial()
	e.SetPresence("@a", "online", "hi")
	p, ok := e.Presence("@a")
	if !ok || p.Presence != "online" || p.StatusMsg != "hi" || !p.CurrentlyActive || p.LastActiveTS != now.UnixMilli() {
		t.Fatalf("presence = %+v", p)
	}
	s1 := e.Serial()
	if got := e.PresenceSince(s0); len(got) != 1 || got["@a"].StatusMsg != "hi" {
		t.Fatalf("PresenceSince(s0) = %v", got)
	}
	// Repeating the same state only refreshes the last active time.
	now = now.Add(time.Second)
	e.SetPresence("@a", "online", "hi")
	if e.Serial() != s1 || len(e.PresenceSince(s1)) != 0 {
		t.Fatal("keep-alive was a change")
	}
	if p, _ := e.Presence("@a"); p.StatusMsg != "hi" || p.LastActiveTS != now.UnixMilli() {
		t.Fatalf("after keep-alive: %+v", p)
	}
	e.SetPresence("@a", "unavailable", "hi")
	p, _ = e.Presence("@a")
	if p.CurrentlyActive || p.LastActiveTS != now.UnixMilli() || len(e.PresenceSince(s1)) != 1 {
		t.Fatalf("unavailable: %+v", p)
	}
	c := presenceEventContent(p, now.Add(5*time.Second))
	if c["presence"] != "unavailable" || c["last_active_ago"] != int64(5000) || c["status_msg"] != "hi" || c["currently_active"] != nil {
		t.Fatalf("content = %v", c)
	}
}
