package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/proto"
	"github.com/keyq/keyq/internal/server"
	"github.com/keyq/keyq/internal/testutil"
)

// TestServerReaderRepliesInOrderWhileWaitsAnswer pipelines PINGs, which the reader
// answers itself, between waiting GETs that another connection's puts answer from
// their own goroutines: the reader and those goroutines write their replies under
// one mutex, so the PINGs' replies still come in order, each with its own body
// and none torn by a GET's, and every GET gets a message.
func TestServerReaderRepliesInOrderWhileWaitsAnswer(t *testing.T) {
	const (
		pings = 2000
		gets  = 200
	)
	s := testutil.StartServer(t, testutil.WithServer(func(cfg *server.Config) {
		cfg.MaxOutputBytes = 4 << 10 // small, though direct replies never queue for it
	}))
	c := testutil.Dial(t, s.Addr)
	producer := testutil.Dial(t, s.Addr)

	var wg sync.WaitGroup
	wg.Go(func() {
		getBody := getWaitBody(t, "w", 60_000)
		for i := range pings {
			if i%(pings/gets) == 0 {
				if err := c.Send(proto.OpGet, uint32(pings+i), getBody); err != nil {
					t.Errorf("send get: %v", err)
					return
				}
			}
			if err := c.Send(proto.OpPing, uint32(i), fmt.Appendf(nil, "ping-%d", i)); err != nil {
				t.Errorf("send ping: %v", err)
				return
			}
			if i%50 == 0 {
				if err := c.Flush(); err != nil {
					t.Errorf("flush: %v", err)
					return
				}
			}
		}
		if err := c.Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
	})
	wg.Go(func() {
		for i := range gets {
			f := producer.Do(proto.OpPut, uint32(i), testutil.KeyBody(t, "w", []byte("m")))
			if f.Status() != proto.StatusOK {
				t.Errorf("put %d: %v", i, f.Status())
				return
			}
		}
	})

	nextPing, gotGets := 0, 0
	c.NetConn().SetReadDeadline(time.Now().Add(30 * time.Second))
	for nextPing < pings || gotGets < gets {
		f, err := c.Recv()
		if err != nil {
			t.Fatalf("after %d pings and %d gets: %v", nextPing, gotGets, err)
		}
		want(t, f, proto.StatusOK, "")
		if f.Op == proto.OpGet {
			gotGets++
			continue
		}
		if f.ID != uint32(nextPing) || string(f.Body) != fmt.Sprintf("ping-%d", nextPing) {
			t.Fatalf("ping reply id %d body %q, want ping %d next", f.ID, f.Body, nextPing)
		}
		nextPing++
	}
	wg.Wait()
}
