package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/keyq/keyq/internal/bench"
)

// server is one system in the comparison: how to install it, start it on loopback
// with its data under a folder, and drive it.
type server struct {
	name    string // as in the table
	pkg     string // Debian package; empty for keyq, which is built from this repo
	binary  string // what must be on PATH (or the path to it)
	durable string // what "durable" means for it, for the docs
	start   func(ctx context.Context, dir string, durable bool) (*instance, error)
}

// instance is a started server: its processes and the driver for one run.
type instance struct {
	procs  []*process
	addr   string // where it listens, for keyq-wire
	driver func(depth int) bench.Driver
}

// wireDriver drives a keyq instance over the raw protocol.
func (in *instance) wireDriver(int) bench.Driver { return &keyqWireDriver{addr: in.addr} }

func (in *instance) stop() {
	// Stop in reverse start order: RabbitMQ before the epmd it registered with.
	for i := len(in.procs) - 1; i >= 0; i-- {
		in.procs[i].stop()
	}
}

// servers lists the systems in table order. keyqBin is the keyq binary to run.
func servers(keyqBin string) []*server {
	return []*server{
		{name: "keyq", binary: keyqBin,
			durable: "`keyq serve --storage disk --fsync always`",
			start: func(ctx context.Context, dir string, d bool) (*instance, error) {
				return startKeyq(ctx, keyqBin, dir, d)
			}},
		{name: "keyq-wire", binary: keyqBin,
			durable: "as keyq; driven by a minimal pipelining loop over internal/proto, " +
				"not the public client",
			start: func(ctx context.Context, dir string, d bool) (*instance, error) {
				in, err := startKeyq(ctx, keyqBin, dir, d)
				if err == nil {
					in.driver = in.wireDriver
				}
				return in, err
			}},
		{name: "redis", pkg: "redis-server", binary: "redis-server",
			durable: "AOF with `appendfsync always`", start: startRedis},
		{name: "beanstalkd", pkg: "beanstalkd", binary: "beanstalkd",
			durable: "binlog with `-f0` (fsync after every write)", start: startBeanstalkd},
		{name: "nats-jetstream", pkg: "nats-server", binary: "nats-server",
			durable: "JetStream file storage (this version has no fsync-per-write setting)",
			start:   startNATS},
		{name: "rabbitmq", pkg: "rabbitmq-server", binary: "/usr/lib/rabbitmq/bin/rabbitmq-server",
			durable: "durable queues, persistent messages, publisher confirms",
			start:   startRabbit},
	}
}

// pendingError marks a server that cannot run a mode yet; the table says "pending".
type pendingError struct{ why string }

func (e *pendingError) Error() string { return e.why }

// otherDoors matches the address flags of keyq serve's front doors besides --addr.
var otherDoors = regexp.MustCompile(`(--[a-z]+-addr) string`)

func startKeyq(ctx context.Context, bin, dir string, durable bool) (*instance, error) {
	help, err := exec.Command(bin, "serve", "--help").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("keyq serve --help: %w", err)
	}
	has := func(flag string) bool { return strings.Contains(string(help), flag+" ") }
	args := []string{bin, "serve"}
	// The comparison uses the native protocol only; other front doors (HTTP, RESP)
	// would also collide on their default ports between instances.
	for _, m := range otherDoors.FindAllStringSubmatch(string(help), -1) {
		args = append(args, m[1]+"=")
	}
	switch {
	case durable && !(has("--storage") && has("--fsync")):
		return nil, &pendingError{"keyq serve has no --storage disk --fsync always yet"}
	case durable:
		args = append(args, "--storage", "disk", "--fsync", "always",
			"--data-dir", filepath.Join(dir, "data"))
	case has("--storage"):
		args = append(args, "--storage", "memory")
	}
	return startSimple(ctx, "keyq", dir, nil, func(addr string) []string {
		return append(args, "--addr", addr)
	}, func(addr string) func(int) bench.Driver {
		return func(int) bench.Driver { return &bench.KeyqDriver{Addr: addr} }
	})
}

func startRedis(ctx context.Context, dir string, durable bool) (*instance, error) {
	aof := []string{"--appendonly", "no"}
	if durable {
		aof = []string{"--appendonly", "yes", "--appendfsync", "always"}
	}
	return startSimple(ctx, "redis", dir, nil, func(addr string) []string {
		host, port, _ := strings.Cut(addr, ":")
		return append([]string{"redis-server", "--bind", host, "--port", port,
			"--dir", dir, "--save", "", "--protected-mode", "no"}, aof...)
	}, func(addr string) func(int) bench.Driver {
		return func(int) bench.Driver { return &redisDriver{addr: addr} }
	})
}

func startBeanstalkd(ctx context.Context, dir string, durable bool) (*instance, error) {
	var binlog []string
	if durable {
		binlog = []string{"-b", dir, "-f0"}
	}
	return startSimple(ctx, "beanstalkd", dir, nil, func(addr string) []string {
		host, port, _ := strings.Cut(addr, ":")
		return append([]string{"beanstalkd", "-l", host, "-p", port}, binlog...)
	}, func(addr string) func(int) bench.Driver {
		return func(int) bench.Driver { return &beanstalkDriver{addr: addr} }
	})
}

func startNATS(ctx context.Context, dir string, durable bool) (*instance, error) {
	storage := jetstream.MemoryStorage
	if durable {
		storage = jetstream.FileStorage
	}
	return startSimple(ctx, "nats-server", dir, nil, func(addr string) []string {
		host, port, _ := strings.Cut(addr, ":")
		return []string{"nats-server", "-a", host, "-p", port, "-js",
			"-sd", filepath.Join(dir, "jetstream")}
	}, func(addr string) func(int) bench.Driver {
		return func(depth int) bench.Driver {
			return &natsDriver{url: "nats://" + addr, storage: storage, depth: depth}
		}
	})
}

// startSimple starts a server that takes its address on the command line and is
// ready once its port accepts connections.
func startSimple(ctx context.Context, name, dir string, env []string,
	args func(addr string) []string,
	driver func(addr string) func(int) bench.Driver) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := startProcess(name, dir, env, args(addr)...)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, 30*time.Second, dialReady(addr)); err != nil {
		p.stop()
		return nil, err
	}
	return &instance{procs: []*process{p}, addr: addr, driver: driver(addr)}, nil
}

// startRabbit starts a private epmd, then a RabbitMQ node whose every file lives
// under dir, and waits until it takes AMQP connections.
func startRabbit(ctx context.Context, dir string, durable bool) (*instance, error) {
	ports := make([]int, 3) // AMQP, Erlang distribution, epmd
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	epmdPort := strconv.Itoa(ports[2])
	epmd, err := startProcess("epmd", dir, nil, "epmd", "-port", epmdPort,
		"-address", "127.0.0.1")
	if err != nil {
		return nil, err
	}
	in := &instance{procs: []*process{epmd}}
	if err := epmd.waitReady(ctx, 10*time.Second, dialReady("127.0.0.1:"+epmdPort)); err != nil {
		in.stop()
		return nil, err
	}
	plugins := filepath.Join(dir, "enabled_plugins")
	if err := os.WriteFile(plugins, []byte("[].\n"), 0o644); err != nil {
		in.stop()
		return nil, fmt.Errorf("write rabbitmq plugins file: %w", err)
	}
	env := []string{
		"HOME=" + dir, // the Erlang cookie goes here
		"ERL_EPMD_PORT=" + epmdPort,
		"RABBITMQ_NODENAME=keyqbench@localhost",
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(ports[0]),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(ports[1]),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + plugins,
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "rabbitmq.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		"RABBITMQ_GENERATED_CONFIG_DIR=" + filepath.Join(dir, "generated"),
	}
	rabbit, err := startProcess("rabbitmq", dir, env, "/usr/lib/rabbitmq/bin/rabbitmq-server")
	if err != nil {
		in.stop()
		return nil, err
	}
	in.procs = append(in.procs, rabbit)
	url := fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", ports[0])
	if err := rabbit.waitReady(ctx, 90*time.Second, amqpReady(url)); err != nil {
		in.stop()
		return nil, err
	}
	in.driver = func(depth int) bench.Driver {
		return &rabbitDriver{url: url, durable: durable, depth: depth}
	}
	return in, nil
}

func amqpReady(url string) func(context.Context) error {
	return func(context.Context) error {
		c, err := amqp.Dial(url)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
