package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/keyq/keyq/client"
	"github.com/keyq/keyq/internal/testutil"
)

func TestTopOnceShowsQueuesDeepestFirst(t *testing.T) {
	srv := testutil.StartServer(t)
	for q, n := range map[string]int{"shallow": 1, "deep": 3, "middle": 2} {
		for range n {
			runCLI(t, "msg", "put", q, "--addr", srv.Addr).want(t, exitOK)
		}
	}

	r := runCLI(t, "", "top", "--once", "--interval", "20ms", "--addr", srv.Addr).want(t, exitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != topHeaderLines+3 {
		t.Fatalf("%d lines, want %d headers and 3 queues:\n%s",
			len(lines), topHeaderLines, r.stdout)
	}
	if !strings.HasPrefix(lines[0], "keyq "+srv.Addr) || !strings.Contains(lines[1], "queues 3") {
		t.Fatalf("header lacks the address or the queue count:\n%s", r.stdout)
	}
	for i, want := range []string{`deep +3 +9 B`, `middle +2 +6 B`, `shallow +1 +3 B`} {
		if !regexp.MustCompile(`^` + want + ` `).MatchString(lines[topHeaderLines+i]) {
			t.Fatalf("row %d = %q, want %q:\n%s", i, lines[topHeaderLines+i], want, r.stdout)
		}
	}
}

func TestTopOnceWithoutQueuesAndRefusesBadInterval(t *testing.T) {
	srv := testutil.StartServer(t)
	r := runCLI(t, "", "top", "--interval", "10ms", "--addr", srv.Addr).want(t, exitOK)
	if !strings.Contains(r.stdout, "QUEUE") || strings.Count(r.stdout, "\n") != topHeaderLines {
		t.Fatalf("frame of a server without queues:\n%s", r.stdout)
	}
	runCLI(t, "", "top", "--interval", "0s", "--addr", srv.Addr).want(t, exitUsage)
}

// topStats builds a sample of a server whose queue i has depth[i] messages and
// puts[i] puts, and as many gets.
func topStats(at time.Time, depth, puts []int) *topSample {
	s := &client.Stats{Version: "test"}
	for i := range depth {
		q := client.QueueStats{
			Name:     fmt.Sprintf("queue-with-a-long-name-%02d", i),
			Messages: int64(depth[i]),
			Puts:     uint64(puts[i]),
			Gets:     uint64(puts[i]),
		}
		s.QueueStats = append(s.QueueStats, q)
		s.Puts += q.Puts
		s.Gets += q.Gets
	}
	return &topSample{at: at, stats: s}
}

func TestTopRatesFromSuccessiveStats(t *testing.T) {
	t0 := time.Now()
	prev := topStats(t0, []int{5, 1}, []int{10, 100})
	cur := topStats(t0.Add(2*time.Second), []int{7, 1}, []int{30, 100})

	rows := topRows(prev, cur)
	if rows[0].messages != 7 || rows[0].putRate != 10 || rows[1].putRate != 0 {
		t.Fatalf("rows %+v, want the deepest first at 10 puts/s, then 0/s", rows)
	}
	if rows := topRows(nil, cur); rows[0].putRate >= 0 {
		t.Fatalf("rate %v with no earlier sample, want unknown", rows[0].putRate)
	}
	restarted := topStats(t0.Add(3*time.Second), []int{0, 0}, []int{1, 1})
	if rows := topRows(cur, restarted); rows[0].putRate >= 0 {
		t.Fatalf("rate %v across a restart, want unknown", rows[0].putRate)
	}

	frame := (&topView{addr: "127.0.0.1:1", interval: time.Second}).render(prev, cur, 0, 0)
	if !strings.Contains(frame, "put/s 10.0") {
		t.Fatalf("frame lacks the server's put rate of 10/s:\n%s", frame)
	}
}

func TestTopFrameFitsTheTerminal(t *testing.T) {
	depth := make([]int, 30)
	for i := range depth {
		depth[i] = i
	}
	cur := topStats(time.Now(), depth, depth)

	for _, size := range []struct{ width, height int }{{80, 24}, {40, 10}, {20, 5}} {
		view := &topView{addr: "127.0.0.1:7470", interval: time.Second, redraws: true}
		frame := view.render(nil, cur, size.width, size.height)
		lines := strings.Split(strings.TrimSuffix(frame, "\n"), "\n")
		if len(lines) > size.height {
			t.Errorf("%dx%d: %d lines:\n%s", size.width, size.height, len(lines), frame)
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > size.width {
				t.Errorf("%dx%d: line of %d columns: %q", size.width, size.height, n, l)
			}
		}
		shown := size.height - topHeaderLines - 1
		if last := lines[len(lines)-1]; last != fmt.Sprintf("... %d more queues", 30-shown) {
			t.Errorf("%dx%d: last line %q does not count the queues left out", size.width,
				size.height, last)
		}
		if size.height > topHeaderLines+1 && !strings.Contains(lines[topHeaderLines], "29") {
			t.Errorf("%dx%d: first row %q is not the deepest queue", size.width, size.height,
				lines[topHeaderLines])
		}
	}
}

// TestTopShowsMessagesUnderLease: a reserved message has left the queue's depth but
// is not done; top shows it in INFLIGHT until it is acked.
func TestTopShowsMessagesUnderLease(t *testing.T) {
	srv := testutil.StartServer(t)
	for range 3 {
		runCLI(t, "msg", "put", "jobs", "--addr", srv.Addr).want(t, exitOK)
	}
	c, err := client.Dial(t.Context(), srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Reserve(t.Context(), []string{"jobs"}, client.ReserveOptions{Max: 2}); err != nil {
		t.Fatal(err)
	}

	r := runCLI(t, "", "top", "--once", "--interval", "20ms", "--addr", srv.Addr).want(t, exitOK)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if !strings.Contains(lines[topHeaderLines-1], "INFLIGHT") {
		t.Fatalf("no INFLIGHT column:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`^jobs +1 .* 2 +0$`).MatchString(lines[topHeaderLines]) {
		t.Fatalf("row %q, want depth 1 and 2 in flight:\n%s", lines[topHeaderLines], r.stdout)
	}
}

// TestTopHelpNamesEveryColumn keeps `keyq top --help` in step with the columns a frame
// prints.
func TestTopHelpNamesEveryColumn(t *testing.T) {
	cur := topStats(time.Now(), []int{1}, []int{1})
	frame := (&topView{addr: "127.0.0.1:1", interval: time.Second}).render(nil, cur, 0, 0)
	var header string
	for line := range strings.Lines(frame) {
		if strings.HasPrefix(line, "QUEUE") {
			header = line
		}
	}
	if header == "" {
		t.Fatalf("no column header in the frame:\n%s", frame)
	}

	help := newTopCmd().Long
	for _, col := range strings.Fields(header) {
		if !strings.Contains(help, col) {
			t.Errorf("top's help does not name the column %s:\n%s", col, help)
		}
	}
}
