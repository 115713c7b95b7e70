package fsm

import (
	"context"
	"testing"
	"time"
)

func TestNotifierTouchedSince(t *testing.T) {
	n := NewNotifier(10)
	if !n.TouchedSince(5, "@a:x", nil) {
		t.Fatal("an index below the floor must count as touched")
	}
	n.publish(11, &Touched{Users: map[string]bool{"@a:x": true}, Rooms: map[string]bool{"!r:x": true}})
	cases := []struct {
		index uint64
		user  string
		rooms []string
		want  bool
	}{
		{10, "@a:x", nil, true},
		{10, "@b:x", nil, false},
		{10, "@b:x", []string{"!r:x"}, true},
		{10, "@b:x", []string{"!other:x"}, false},
		{11, "@a:x", []string{"!r:x"}, false},
	}
	for _, c := range cases {
		if got := n.TouchedSince(c.index, c.user, c.rooms); got != c.want {
			t.Errorf("TouchedSince(%d, %s, %v) = %v, want %v", c.index, c.user, c.rooms, got, c.want)
		}
	}
}

func TestNotifierWaitApplied(t *testing.T) {
	n := NewNotifier(1)
	go n.publish(3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !n.WaitApplied(ctx, 3) {
		t.Fatal("WaitApplied did not see index 3")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel2()
	if n.WaitApplied(short, 99) {
		t.Fatal("WaitApplied reported an index never applied")
	}
}
