package chaos

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer answers every line with the same line, on a fresh loopback port.
func echoServer(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// dialFrom connects to addr from the loopback IP src, as a node does.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a line and reports whether it came back within wait.
func roundTrip(c net.Conn, wait time.Duration) error {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err == nil && line != "ping\n" {
		return errors.New("garbled echo " + line)
	}
	return err
}

func TestProxyCutsAndHeals(t *testing.T) {
	nw := NewNetwork()
	t.Cleanup(nw.Close)
	targetB := echoServer(t, "127.0.0.22")
	targetC := echoServer(t, "127.0.0.23")
	if _, err := nw.AddNode("a", "127.0.0.21", echoServer(t, "127.0.0.21")); err != nil {
		t.Fatal(err)
	}
	proxyB, err := nw.AddNode("b", "127.0.0.22", targetB)
	if err != nil {
		t.Fatal(err)
	}
	proxyC, err := nw.AddNode("c", "127.0.0.23", targetC)
	if err != nil {
		t.Fatal(err)
	}

	ab := dialFrom(t, "127.0.0.21", proxyB)
	if err := roundTrip(ab, 2*time.Second); err != nil {
		t.Fatalf("a->b before the cut: %v", err)
	}
	cb := dialFrom(t, "127.0.0.23", proxyB)
	if err := roundTrip(cb, 2*time.Second); err != nil {
		t.Fatalf("c->b before the cut: %v", err)
	}

	nw.Isolate("a")
	if err := roundTrip(ab, 2*time.Second); err == nil {
		t.Fatal("a->b connection still forwards after a was isolated")
	} else if isTimeout(err) {
		t.Fatalf("the open a->b connection should be cut, not left hanging: %v", err)
	}
	held := dialFrom(t, "127.0.0.21", proxyB)
	if err := roundTrip(held, 300*time.Millisecond); !isTimeout(err) {
		t.Fatalf("new a->b connection while isolated: want a blackhole (timeout), got %v", err)
	}
	inbound := dialFrom(t, "127.0.0.23", proxyC) // c->c is not a link a takes part in
	if err := roundTrip(inbound, 2*time.Second); err != nil {
		t.Fatalf("c->c during a's isolation: %v", err)
	}
	if err := roundTrip(cb, 2*time.Second); err != nil {
		t.Fatalf("c->b during a's isolation: %v", err)
	}

	nw.Heal()
	if err := roundTrip(held, 2*time.Second); err == nil || isTimeout(err) {
		t.Fatalf("the blackholed connection should be closed on heal, got %v", err)
	}
	healed := dialFrom(t, "127.0.0.21", proxyB)
	if err := roundTrip(healed, 2*time.Second); err != nil {
		t.Fatalf("a->b after heal: %v", err)
	}
	if nw.UnknownSources() != 0 {
		t.Fatalf("unknown sources: %d", nw.UnknownSources())
	}
	stranger := dialFrom(t, "127.0.0.1", proxyB)
	if err := roundTrip(stranger, 2*time.Second); err != nil {
		t.Fatalf("unknown source when nothing is cut: %v", err)
	}
	if nw.UnknownSources() != 1 {
		t.Fatalf("a connection from 127.0.0.1 should count as unknown, got %d", nw.UnknownSources())
	}
}

func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
