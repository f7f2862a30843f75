package main

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyq/keyq/internal/bench"
	"github.com/keyq/keyq/internal/testutil"
)

func sampleReport() *report {
	ok := func(server string, rate float64) cell {
		return cell{Server: server, Mode: "memory", Workload: "1x1-100B", level: one,
			MsgsPerSec: rate, Result: &bench.Result{MsgsPerSec: rate, ExactlyOnce: true}}
	}
	lossy := ok("beanstalkd", 10)
	lossy.Result = &bench.Result{MsgsPerSec: 10, Lost: 3}
	return &report{
		Duration: "1s",
		Servers:  []serverInfo{{Name: "keyq"}, {Name: "redis"}, {Name: "beanstalkd"}},
		Cells: []cell{ok("keyq", 3000), ok("redis", 1500), lossy,
			{Server: "keyq", Mode: "durable", Workload: "1x1-100B", level: one,
				Missing: "pending: no durable mode"}},
	}
}

func TestMarkdownShowsRatiosAndMarks(t *testing.T) {
	md := sampleReport().markdown("benchmarks.svg")
	for _, want := range []string{"| 1x1-100B | 1 | 3.0k | 1.5k | 10 (!) | 2.00x |",
		"pending", "3 lost", sectionBegin, sectionEnd} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

// TestDeliveryIssueTellsNotTakenFromLost: messages the consumers never got to are
// "not taken", in results saved before not_taken existed too (they counted as lost).
func TestDeliveryIssueTellsNotTakenFromLost(t *testing.T) {
	for _, c := range []struct {
		res  bench.Result
		want string
	}{
		{bench.Result{Lost: 3}, "3 lost, 0 duplicates, 0 corrupt"},
		{bench.Result{NotTaken: 4}, "4 not taken (the consumers stopped early), 0 lost"},
		{bench.Result{NotTaken: 5, DrainTimedOut: true},
			"5 not taken before the drain timeout, 0 lost"},
		{bench.Result{Lost: 6, DrainTimedOut: true},
			"6 not taken before the drain timeout, 0 lost"},
	} {
		if got := deliveryIssue(&c.res); !strings.HasPrefix(got, c.want) {
			t.Errorf("issue of %+v = %q, want it to start %q", c.res, got, c.want)
		}
	}
}

func TestMarkdownPacedTableShowsPaceLagAndService(t *testing.T) {
	rep := sampleReport()
	lag, service := bench.Latency{P99: 3500}, bench.Latency{P99: 700}
	rep.Cells = append(rep.Cells, cell{Server: "keyq", Mode: "memory", Workload: "8x8-100B",
		level: one, Rate: 1500, MsgsPerSec: 1500, Result: &bench.Result{MsgsPerSec: 1500,
			ExactlyOnce: true, PutLatency: bench.Latency{P50: 200, P99: 4000, P999: 9000},
			PaceLag: &lag, PutService: &service}})
	md := rep.markdown("benchmarks.svg")
	for _, want := range []string{"| pace lag p99 | put p99 from send |",
		"| 4.0 ms | 9.0 ms |", "| 3.5 ms | 700 µs |",
		"(pace lag p99 3.5 ms, p99 from send 700 µs), **not met**"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestReplaceSectionKeepsTheRest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	before := "# Benchmarks\n\n## keyq bench\n\nby hand\n\n## Side by side\n\nintro\n\n" +
		sectionBegin + "\nold table\n" + sectionEnd + "\n\n## Profiles\n\nother\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	block := sectionBegin + "\nnew table\n" + sectionEnd + "\n"
	if err := replaceSection(path, block); err != nil {
		t.Fatalf("replace: %v", err)
	}
	got, _ := os.ReadFile(path)
	want := strings.Replace(before, "old table", "new table", 1)
	if string(got) != want {
		t.Fatalf("file after replace:\n%s\nwant:\n%s", got, want)
	}

	fresh := filepath.Join(t.TempDir(), "new.md")
	if err := replaceSection(fresh, block); err != nil {
		t.Fatalf("replace in a new file: %v", err)
	}
	if got, _ := os.ReadFile(fresh); !strings.Contains(string(got), "## Side by side\n\n"+block) {
		t.Errorf("new file:\n%s", got)
	}
}

func TestChartIsWellFormedSVG(t *testing.T) {
	svg := sampleReport().chart()
	dec := xml.NewDecoder(strings.NewReader(string(svg)))
	rects := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("chart is not well-formed XML: %v", err)
			}
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	// Background, three legend swatches, three bars (the pending cell has text only).
	if rects != 7 {
		t.Errorf("chart has %d rects, want 7", rects)
	}
}

// TestAnchorDrivers runs a small count through each anchor installed on this
// machine, checking the drivers deliver every message exactly once.
func TestAnchorDrivers(t *testing.T) {
	for _, s := range servers("") {
		if s.pkg == "" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			if !onPath(s.binary) {
				t.Skipf("%s is not installed", s.binary)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			in, err := s.start(ctx, t.TempDir(), true)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			defer in.stop()
			for _, l := range []level{one, {Depth: 8, Batch: 1}, {Depth: 1, Batch: 8}} {
				cfg := bench.Config{Producers: 2, Consumers: 2, Queues: 2, Depth: l.Depth,
					Batch: l.Batch, Count: 200, Duration: time.Minute,
					GetWait: 20 * time.Millisecond}
				res, err := bench.Run(ctx, cfg, in.driver(l.Depth))
				if l.Batch > 1 && s.name != "redis" {
					if !errors.Is(err, bench.ErrNotSupported) {
						t.Errorf("%s: err %v, want not supported", l, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", l, err)
				}
				if res.Delivered != 200 || !res.ExactlyOnce || res.Errors != 0 {
					t.Errorf("%s: delivered %d, exactly once %v, errors %v", l,
						res.Delivered, res.ExactlyOnce, res.ErrorSample)
				}
			}
		})
	}
}

func TestParseLevel(t *testing.T) {
	for text, want := range map[string]level{
		"1": one, "p64": pipelined, "b64": batched, "p1": one,
	} {
		if got, err := parseLevel(text); err != nil || got != want {
			t.Errorf("parseLevel(%q) = %v, %v; want %v", text, got, err, want)
		}
	}
	for _, bad := range []string{"", "64", "p", "b0", "x3", "p-1"} {
		if _, err := parseLevel(bad); err == nil {
			t.Errorf("parseLevel(%q) accepted", bad)
		}
	}
}

func TestKeyqWireDriver(t *testing.T) {
	srv := testutil.StartServer(t)
	for _, depth := range []int{1, 16} {
		cfg := bench.Config{Producers: 2, Consumers: 2, Queues: 2, Depth: depth, Count: 500,
			Duration: time.Minute, GetWait: 20 * time.Millisecond}
		res, err := bench.Run(context.Background(), cfg, &keyqWireDriver{addr: srv.Addr})
		if err != nil {
			t.Fatalf("depth %d: %v", depth, err)
		}
		if res.Delivered != 500 || !res.ExactlyOnce || res.Errors != 0 {
			t.Errorf("depth %d: delivered %d, exactly once %v, errors %v", depth,
				res.Delivered, res.ExactlyOnce, res.ErrorSample)
		}
	}
	_, err := bench.Run(context.Background(), bench.Config{Batch: 4, Count: 1},
		&keyqWireDriver{addr: srv.Addr})
	if !errors.Is(err, bench.ErrNotSupported) {
		t.Errorf("batch: err %v, want not supported", err)
	}
}

func TestNewPlanTakesPacedRate(t *testing.T) {
	p, err := newPlan(options{systems: "keyq,redis", modes: "memory", levels: "1",
		workloads: "8x8-100B", pacedRate: 28800})
	if err != nil {
		t.Fatalf("new plan: %v", err)
	}
	if p.pacedRate != 28800 || len(p.servers) != 2 || len(p.workloads) != 1 {
		t.Errorf("plan %+v, want paced rate 28800, 2 servers, 1 workload", p)
	}
}

func TestNewPlanRefusesANameGivenTwice(t *testing.T) {
	for _, o := range []options{
		{systems: "keyq,redis,keyq", modes: "memory", levels: "1"},
		{systems: "keyq", modes: "memory,memory", levels: "1"},
		{systems: "keyq", modes: "memory", levels: "1,p64,p1"},
		{systems: "keyq", modes: "memory", levels: "1", workloads: "8x8-100B,8x8-100B"},
	} {
		if _, err := newPlan(o); err == nil || !strings.Contains(err.Error(), "twice") {
			t.Errorf("newPlan(%+v) = %v, want an error naming the duplicate", o, err)
		}
	}
}

func TestChartLinkIsRelativeToTheMarkdown(t *testing.T) {
	for _, c := range []struct{ md, svg, want string }{
		{"docs/BENCHMARKS.md", "docs/benchmarks.svg", "benchmarks.svg"},
		{"/tmp/out/B.md", "/tmp/out/b.svg", "b.svg"},
		{"/tmp/out/B.md", "/tmp/charts/b.svg", "../charts/b.svg"},
		{"docs/BENCHMARKS.md", "", ""},
	} {
		if got := chartLink(c.md, c.svg); got != c.want {
			t.Errorf("chartLink(%q, %q) = %q, want %q", c.md, c.svg, got, c.want)
		}
	}
}
