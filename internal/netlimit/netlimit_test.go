package netlimit

import (
	"errors"
	"net"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Limit(inner, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String()) // the kernel completes the handshake: the backlog holds the third
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	first, second := <-accepted, <-accepted
	waitFor(t, "Accept to wait for a place", func() bool { return l.Stats().Waited == 1 })
	select {
	case c := <-accepted:
		t.Fatalf("a third connection %v was accepted while two are open", c.RemoteAddr())
	default:
	}
	if st := l.Stats(); st.Active != 2 || st.Accepted != 2 {
		t.Fatalf("stats %+v, want 2 active and accepted", st)
	}
	first.Close()
	first.Close() // a second Close must not free a second place
	third := <-accepted
	defer third.Close()
	if st := l.Stats(); st.Active != 2 || st.Accepted != 3 {
		t.Fatalf("stats %+v after one close, want 2 active, 3 accepted", st)
	}
	second.Close()
	third.Close()
	if st := l.Stats(); st.Active != 0 {
		t.Fatalf("stats %+v, want none active", st)
	}
}

// TestCloseWakesAccept: closing the listener ends an Accept waiting for a
// place (graceful shutdown must not hang on it).
func TestCloseWakesAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, _ := Limit(inner, 1)
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	held, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	waitFor(t, "Accept to wait", func() bool { return l.Stats().Waited == 1 })
	l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func TestLimitRejectsNonPositive(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := Limit(nil, n); err == nil {
			t.Errorf("Limit(_, %d) accepted", n)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
