// Package crash tests that keyq loses no acknowledged message when it is killed: it
// builds the keyq binary, runs `keyq serve` on a data directory under load from
// several clients, kills it with SIGKILL at random moments, restarts it and checks
// what comes back.
package crash

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/testutil"
)

var rounds = flag.Int("crash.rounds", 20,
	"kill-and-restart rounds of TestCrashKeepsAcknowledgedPuts")

// queues is how many queues the load uses; each has one producer and all but the last
// one consumer.
const queues = 4

// opTimeout bounds every client call; a healthy server answers far sooner.
const opTimeout = 30 * time.Second

// TestCrashKeepsAcknowledgedPuts kills the server at random moments under load, with
// a random fsync policy each round (a process crash loses nothing in any of them).
// After each restart and at the end it checks, per queue: every acknowledged put is
// there exactly once, in order, with its bytes, and no message whose get was
// answered comes back. A put or get cut off by the kill may or may not have taken
// effect; the check allows exactly that.
func TestCrashKeepsAcknowledgedPuts(t *testing.T) {
	bin := testutil.BuildKeyq(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	models := make([]*queueModel, queues)
	for i := range models {
		models[i] = newQueueModel(fmt.Sprintf("crash-%d", i))
	}

	for round := range *rounds {
		fsync := []string{"always", "interval", "never"}[rng.IntN(3)]
		srv := startServe(t, bin, dir, "--fsync", fsync)
		c := load(t, srv.Addr, models)
		time.Sleep(time.Duration(20+rng.IntN(250)) * time.Millisecond) // the kill's moment
		srv.Kill(t, opTimeout)
		c.wait()
		if err := c.failure(); err != nil {
			t.Fatalf("round %d (fsync %s): %v\nserver log:\n%s", round, fsync, err, srv.Log())
		}
		t.Logf("round %d (fsync %s): %d puts acknowledged, %d gets answered so far", round,
			fsync, totalAcked(models), totalConsumed(models))
	}

	srv := startServe(t, bin, dir)
	for _, m := range models {
		if err := m.drain(srv.Addr); err != nil {
			t.Fatalf("final drain: %v\nserver log:\n%s", err, srv.Log())
		}
	}
}

// queueModel is what the test knows of one queue. The producer puts messages with
// increasing sequence numbers, one at a time; the consumer gets them one at a time.
type queueModel struct {
	name string

	mu           sync.Mutex
	nextSeq      uint64          // the producer's next sequence number
	acked        uint64          // highest sequence number whose put was acknowledged
	unknown      map[uint64]bool // puts cut off by a kill: may or may not be stored
	lastConsumed uint64          // sequence number of the last answered get
	mayBeTaken   map[uint64]bool // acked messages a get cut off by a kill may have taken
}

func newQueueModel(name string) *queueModel {
	return &queueModel{name: name, nextSeq: 1, unknown: map[uint64]bool{},
		mayBeTaken: map[uint64]bool{}}
}

// payload is the message with sequence number seq: it names its queue and number,
// and its length and bytes follow from them.
func payload(queue string, seq uint64) []byte {
	head := fmt.Sprintf("%s:%d|", queue, seq)
	p := make([]byte, len(head)+int(seq*7919%3000))
	copy(p, head)
	for i := len(head); i < len(p); i++ {
		p[i] = byte(uint64(i)*seq + seq>>3)
	}
	return p
}

// received checks a message an answered get returned.
func (m *queueModel) received(data []byte) error {
	head, _, ok := bytes.Cut(data, []byte("|"))
	name, num, ok2 := strings.Cut(string(head), ":")
	seq, err := strconv.ParseUint(num, 10, 64)
	if !ok || !ok2 || err != nil || name != m.name {
		return fmt.Errorf("queue %s: get returned a message not of this queue: %.40q",
			m.name, data)
	}
	if !bytes.Equal(data, payload(m.name, seq)) {
		return fmt.Errorf("queue %s: message %d has the wrong bytes", m.name, seq)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if seq <= m.lastConsumed {
		return fmt.Errorf("queue %s: message %d came back after %d was taken", m.name, seq,
			m.lastConsumed)
	}
	if seq >= m.nextSeq {
		return fmt.Errorf("queue %s: message %d was never put", m.name, seq)
	}
	for s := m.lastConsumed + 1; s < seq; s++ {
		if !m.unknown[s] && !m.mayBeTaken[s] {
			return fmt.Errorf("queue %s: acknowledged message %d lost (got %d after %d)",
				m.name, s, seq, m.lastConsumed)
		}
	}
	m.lastConsumed = seq
	return nil
}

// getCutOff records that a get got no answer: it may have taken the head message.
func (m *queueModel) getCutOff() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := m.lastConsumed + 1; s <= m.acked; s++ {
		if !m.unknown[s] {
			m.mayBeTaken[s] = true
			return
		}
	}
}

// produce puts the next message and records the outcome.
func (m *queueModel) produce(ctx context.Context, c *client.Client) error {
	m.mu.Lock()
	seq := m.nextSeq
	m.nextSeq++
	m.mu.Unlock()

	_, err := c.Put(ctx, m.name, payload(m.name, seq))
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.unknown[seq] = true
		return err
	}
	m.acked = seq
	return nil
}

// drain takes every message left and checks that none acknowledged is missing.
func (m *queueModel) drain(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		msg, err := c.Get(ctx, m.name)
		if errors.Is(err, client.ErrEmpty) {
			break
		}
		if err != nil {
			return fmt.Errorf("queue %s: get: %w", m.name, err)
		}
		if err := m.received(msg.Data); err != nil {
			return err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := m.lastConsumed + 1; s <= m.acked; s++ {
		if !m.unknown[s] && !m.mayBeTaken[s] {
			return fmt.Errorf("queue %s: acknowledged message %d missing at the end", m.name, s)
		}
	}
	return nil
}

func totalAcked(models []*queueModel) (n uint64) {
	for _, m := range models {
		m.mu.Lock()
		n += m.acked
		m.mu.Unlock()
	}
	return n
}

func totalConsumed(models []*queueModel) (n uint64) {
	for _, m := range models {
		m.mu.Lock()
		n += m.lastConsumed
		m.mu.Unlock()
	}
	return n
}

// loadRun is one round's clients: a producer and a consumer per queue, each on its
// own connection, running until the server dies.
type loadRun struct {
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error // the first check that failed
}

// maxOpsPerRound bounds each client's work in one round.
const maxOpsPerRound = 20000

func load(t *testing.T, addr string, models []*queueModel) *loadRun {
	r := &loadRun{}
	for _, m := range models {
		r.wg.Go(func() {
			r.run(addr, func(ctx context.Context, c *client.Client) error {
				return m.produce(ctx, c)
			})
		})
		r.wg.Go(func() {
			r.run(addr, func(ctx context.Context, c *client.Client) error {
				return consume(ctx, c, m, r)
			})
		})
	}
	return r
}

// run dials and calls op until it fails (the kill), at most maxOpsPerRound times.
func (r *loadRun) run(addr string, op func(context.Context, *client.Client) error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := client.Dial(ctx, addr)
	if err != nil {
		return // the server may already be dead
	}
	defer c.Close()
	for range maxOpsPerRound {
		if op(ctx, c) != nil {
			return
		}
	}
}

func consume(ctx context.Context, c *client.Client, m *queueModel, r *loadRun) error {
	msg, err := c.Get(ctx, m.name)
	if errors.Is(err, client.ErrEmpty) {
		time.Sleep(time.Millisecond) // pace polling an empty queue
		return nil
	}
	if err != nil {
		m.getCutOff()
		return err
	}
	if err := m.received(msg.Data); err != nil {
		r.fail(err)
		return err
	}
	return nil
}

func (r *loadRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *loadRun) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *loadRun) wait() { r.wg.Wait() }

// startServe runs keyq serve on dir with small segments and a small cache, so the
// load rolls segments, compacts and reads payloads back from the log. Every front
// door but the native one is off.
func startServe(t *testing.T, bin, dir string, args ...string) *testutil.KeyqProc {
	t.Helper()
	args = append([]string{"--data-dir", dir,
		"--segment-bytes", "64KiB", "--max-message-bytes", "16384", "--cache-bytes", "16KiB"},
		args...)
	args = append(args, "--http-addr", "", "--resp-addr", "")
	return testutil.StartKeyq(t, bin, t.TempDir(), opTimeout, args...)
}
