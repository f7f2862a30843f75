package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyq/keyq/client"
)

// ANSI sequences of top's live view.
const (
	ansiEnterScreen = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	ansiLeaveScreen = "\x1b[?25h\x1b[?1049l"
	ansiHome        = "\x1b[H"
	ansiEndOfLine   = "\x1b[K\r\n" // clear the rest of the line; raw mode needs \r
	ansiEndOfScreen = "\x1b[K\x1b[J"
)

// topHeaderLines is how many lines a frame spends above the queue rows.
const topHeaderLines = 4

func newTopCmd() *cobra.Command {
	var (
		f        clientFlags
		interval time.Duration
		once     bool
	)
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Show queue depths and put and get rates, live",
		Long: `Top shows the server's totals, then a row per queue, deepest first, with the
columns QUEUE, DEPTH and BYTES (the messages waiting and their size), PUT/S and GET/S
(per second since the last refresh), INFLIGHT (messages under a lease, not yet acked)
and WAITING (gets and reserves blocked on the queue). It asks the server for its
stats every --interval and redraws the terminal; press q or Ctrl-C to quit. When its
output is not a terminal, or with --once, it prints one frame, with rates measured
over one --interval, and exits.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, not %v", interval)
			}
			return nil
		},
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, err := f.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()

			t := &topView{c: c, addr: f.address(), interval: interval}
			out, in := cmd.OutOrStdout(), cmd.InOrStdin()
			if fd, ok := terminal(out, in); ok && !once {
				return t.live(cmd.Context(), out, in, fd)
			}
			return t.once(cmd.Context(), out)
		}),
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "time between refreshes")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame and exit")
	return cmd
}

// terminal reports whether out and in are both the terminal, and the descriptor of
// out if so.
func terminal(out io.Writer, in io.Reader) (int, bool) {
	of, ok1 := out.(*os.File)
	inf, ok2 := in.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(of.Fd())) || !term.IsTerminal(int(inf.Fd())) {
		return 0, false
	}
	return int(of.Fd()), true
}

// topView polls one server's stats and draws frames from successive samples.
type topView struct {
	c        *client.Client
	addr     string
	interval time.Duration
	redraws  bool // on a terminal, rather than printing one frame
	prev     *topSample
}

// topSample is one STATS reply and when it came.
type topSample struct {
	at    time.Time
	stats *client.Stats
}

// sample asks the server for its stats, and returns the previous sample with the
// new one.
func (t *topView) sample(ctx context.Context) (prev, cur *topSample, err error) {
	s, err := t.c.Stats(ctx)
	if err != nil {
		return nil, nil, err
	}
	prev, cur = t.prev, &topSample{at: time.Now(), stats: s}
	t.prev = cur
	return prev, cur, nil
}

// once prints one frame, its rates taken over one interval.
func (t *topView) once(ctx context.Context, w io.Writer) error {
	if _, _, err := t.sample(ctx); err != nil {
		return err
	}
	select {
	case <-time.After(t.interval):
	case <-ctx.Done():
		return ctx.Err()
	}
	prev, cur, err := t.sample(ctx)
	if err != nil {
		return err
	}
	frame := t.render(prev, cur, 0, 0)
	_, err = io.WriteString(w, frame)
	return err
}

// live redraws the terminal every interval until q or Ctrl-C is pressed or ctx ends.
func (t *topView) live(ctx context.Context, w io.Writer, in io.Reader, fd int) error {
	inFd := int(in.(*os.File).Fd())
	state, err := term.MakeRaw(inFd)
	if err != nil {
		return fmt.Errorf("put the terminal in raw mode: %w", err)
	}
	defer term.Restore(inFd, state)
	t.redraws = true
	io.WriteString(w, ansiEnterScreen)
	defer io.WriteString(w, ansiLeaveScreen)

	// The reader may stay blocked in Read after top returns: the process exits then.
	quit := make(chan struct{})
	go readQuitKey(in, quit)

	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		prev, cur, err := t.sample(ctx)
		if err != nil {
			return err
		}
		width, height, err := term.GetSize(fd)
		if err != nil {
			width, height = 80, 24
		}
		frame := t.render(prev, cur, width, height)
		// No line break after the last line: on the terminal's last row it would scroll.
		frame = strings.ReplaceAll(strings.TrimSuffix(frame, "\n"), "\n", ansiEndOfLine)
		io.WriteString(w, ansiHome+frame+ansiEndOfScreen)

		select {
		case <-tick.C:
		case <-quit:
			return nil
		case <-ctx.Done():
			return nil // a signal is how top is meant to end, too
		}
	}
}

// readQuitKey closes quit when q, Q or Ctrl-C (raw mode turns it into a byte) is
// read, or when in ends.
func readQuitKey(in io.Reader, quit chan<- struct{}) {
	defer close(quit)
	buf := make([]byte, 16)
	for {
		n, err := in.Read(buf)
		if bytes.ContainsAny(buf[:n], "qQ\x03") || err != nil {
			return
		}
	}
}

// topRow is one queue's line in a frame.
type topRow struct {
	name             string
	messages, bytes  int64
	waiting          int64
	inflight         int64   // under a lease, not yet acked
	putRate, getRate float64 // per second; negative when unknown
}

// topRows returns a row per queue of cur, deepest first (then by name), with the
// rates since prev, if any.
func topRows(prev, cur *topSample) []topRow {
	before := map[string]client.QueueStats{}
	var secs float64
	if prev != nil {
		secs = cur.at.Sub(prev.at).Seconds()
		for _, q := range prev.stats.QueueStats {
			before[q.Name] = q
		}
	}

	rows := make([]topRow, 0, len(cur.stats.QueueStats))
	for _, q := range cur.stats.QueueStats {
		r := topRow{name: q.Name, messages: q.Messages, bytes: q.Bytes, waiting: q.Waiting,
			inflight: q.Inflight}
		b := before[q.Name] // a queue new since prev counts from zero
		r.putRate = rate(b.Puts, q.Puts, secs)
		r.getRate = rate(b.Gets, q.Gets, secs)
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b topRow) int {
		return cmp.Or(cmp.Compare(b.messages, a.messages), cmp.Compare(a.name, b.name))
	})
	return rows
}

// rate is the change from before to now per second, or -1 when it cannot be told
// (no earlier sample, or a counter that went back: the server restarted).
func rate(before, now uint64, secs float64) float64 {
	if secs <= 0 || now < before {
		return -1
	}
	return float64(now-before) / secs
}

// render draws one frame. A width or height of 0 means no limit; otherwise no line
// is wider than width and the frame is at most height lines.
func (t *topView) render(prev, cur *topSample, width, height int) string {
	s := cur.stats
	putRate, getRate := -1.0, -1.0
	if prev != nil {
		secs := cur.at.Sub(prev.at).Seconds()
		putRate = rate(prev.stats.Puts, s.Puts, secs)
		getRate = rate(prev.stats.Gets, s.Gets, secs)
	}

	var b strings.Builder
	line := func(format string, args ...any) {
		b.WriteString(clip(fmt.Sprintf(format, args...), width))
		b.WriteByte('\n')
	}
	title := fmt.Sprintf("keyq %s  version %s  up %s  rates over %s",
		t.addr, s.Version, s.Uptime().Round(time.Second), t.interval)
	if t.redraws {
		title += "  (q to quit)"
	}
	line("%s", title)
	line("connections %d  queues %d  messages %d  bytes %s  put/s %s  get/s %s  waiting %d",
		s.Connections, s.Queues, s.Messages, humanBytes(s.Bytes),
		showRate(putRate), showRate(getRate), s.Waiting)
	line("")

	rows := topRows(prev, cur)
	shown := len(rows)
	if height > 0 && topHeaderLines+shown > height {
		shown = max(height-topHeaderLines-1, 0) // keep a line to say what is left out
	}
	nameWidth := queueColumnWidth(rows[:shown], width)
	line("%-*s %10s %10s %9s %9s %9s %8s", nameWidth, "QUEUE", "DEPTH", "BYTES", "PUT/S",
		"GET/S", "INFLIGHT", "WAITING")
	for _, r := range rows[:shown] {
		line("%-*s %10d %10s %9s %9s %9d %8d", nameWidth, clip(r.name, nameWidth), r.messages,
			humanBytes(r.bytes), showRate(r.putRate), showRate(r.getRate), r.inflight, r.waiting)
	}
	if shown < len(rows) {
		line("... %d more queues", len(rows)-shown)
	}
	return b.String()
}

// topFixedColumns is the width of a row without its queue name.
const topFixedColumns = 1 + 10 + 1 + 10 + 1 + 9 + 1 + 9 + 1 + 9 + 1 + 8

// queueColumnWidth fits the longest name shown, within what width leaves.
func queueColumnWidth(rows []topRow, width int) int {
	w := len("QUEUE")
	for _, r := range rows {
		w = max(w, utf8.RuneCountInString(r.name))
	}
	if width > 0 {
		w = min(w, max(width-topFixedColumns, len("QUEUE")))
	}
	return w
}

// clip cuts s to width runes (0: no limit), marking a cut with a final "~".
func clip(s string, width int) string {
	if width <= 0 || utf8.RuneCountInString(s) <= width {
		return s
	}
	r := []rune(s)
	return string(r[:width-1]) + "~"
}

func showRate(r float64) string {
	if r < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r)
}

// humanBytes writes n in B, KiB, MiB or GiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}
