package resp

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// redisVersion is the Redis version whose commands and replies keyq follows; HELLO
// and INFO report it where clients expect Redis' version.
const redisVersion = "7.2.0"

func connectionCommands() []command {
	conn := func(name string, arity int, flags []string, since, summary string,
		run func(*conn, [][]byte)) command {
		return command{name: name, arity: arity, flags: flags, group: "connection",
			since: since, summary: summary, run: run}
	}
	fast := []string{"fast", "stale", "loading"}
	return []command{
		conn("ping", -1, fast, "1.0.0", "Returns the server's liveliness response.",
			handlePing),
		conn("echo", 2, fast, "1.0.0", "Returns the given string.", handleEcho),
		conn("quit", -1, fast, "1.0.0", "Closes the connection.", handleQuit),
		conn("hello", -1, fast, "6.0.0", "Handshakes with the Redis server.", handleHello),
		conn("auth", -2, fast, "1.0.0", "Authenticates the connection.", handleAuth),
		conn("client", -2, []string{"stale", "loading"}, "2.4.0",
			"A container for client connection commands.", handleClient),
		conn("select", 2, fast, "1.0.0", "Changes the selected database.", handleSelect),
		{name: "command", arity: -1, flags: []string{"loading", "stale"}, group: "server",
			since: "2.8.13", summary: "Returns detailed information about all commands.",
			run: handleCommand},
		{name: "info", arity: -1, flags: []string{"loading", "stale"}, group: "server",
			since: "1.0.0", summary: "Returns information and statistics about the server.",
			run: handleInfo},
		{name: "config", arity: -2, flags: []string{"admin", "noscript", "loading", "stale"},
			group: "server", since: "2.0.0", summary: "A container for server " +
				"configuration commands.", run: handleConfig},
		{name: "multi", arity: 1, flags: []string{"fast", "loading", "stale"},
			group: "transactions", since: "1.2.0", summary: "Starts a transaction.",
			run: handleMulti},
		{name: "exec", arity: 1, flags: []string{"loading", "stale"},
			group: "transactions", since: "1.2.0", summary: "Executes all commands in a " +
				"transaction.", run: handleExec},
		{name: "discard", arity: 1, flags: []string{"fast", "loading", "stale"},
			group: "transactions", since: "2.0.0", summary: "Discards a transaction.",
			run: handleDiscard},
	}
}

func handlePing(c *conn, args [][]byte) {
	switch len(args) {
	case 1:
		c.writeSimple("PONG")
	case 2:
		c.writeBulk(args[1])
	default:
		c.writeError("ERR wrong number of arguments for 'ping' command")
	}
}

func handleEcho(c *conn, args [][]byte) { c.writeBulk(args[1]) }

func handleQuit(c *conn, _ [][]byte) {
	c.writeOK()
	c.quit = true
}

// handleAuth answers as a Redis with no password configured does: its one user,
// "default", takes any password, and there is no other.
//
// TODO: no password can be required, as Redis' requirepass does.
func handleAuth(c *conn, args [][]byte) {
	switch len(args) {
	case 2:
		c.writeError("ERR AUTH <password> called without any password configured for " +
			"the default user. Are you sure your configuration is correct?")
	case 3:
		if !knownUser(args[1]) {
			c.writeError(wrongPass)
			return
		}
		c.writeSimple("OK")
	default:
		c.writeError("ERR syntax error")
	}
}

// wrongPass is Redis' answer to a user it does not know or a wrong password.
const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// knownUser reports whether user is one AUTH accepts: only "default", as in a Redis
// without users configured.
func knownUser(user []byte) bool { return string(user) == "default" }

func handleHello(c *conn, args [][]byte) {
	proto := c.proto
	if len(args) > 1 {
		v, err := strconv.ParseInt(string(args[1]), 10, 64)
		if err != nil {
			c.writeError("ERR Protocol version is not an integer or out of range")
			return
		}
		if v != 2 && v != 3 {
			c.writeError("NOPROTO unsupported protocol version")
			return
		}
		proto = int(v)
	}

	name, hasName, user := "", false, []byte("default")
	for rest := args[min(2, len(args)):]; len(rest) > 0; {
		switch opt := strings.ToLower(string(rest[0])); {
		case opt == "auth" && len(rest) >= 3:
			user = rest[1]
			rest = rest[3:]
		case opt == "setname" && len(rest) >= 2:
			name, hasName = string(rest[1]), true
			if !validClientName(name) {
				c.writeError("ERR Client names cannot contain spaces, newlines or " +
					"special characters.")
				return
			}
			rest = rest[2:]
		default:
			c.writeErrorf("ERR Syntax error in HELLO option '%s'", rest[0])
			return
		}
	}
	if !knownUser(user) {
		c.writeError(wrongPass)
		return
	}
	if hasName {
		c.name = name
	}

	c.proto = proto
	c.writeMap(7)
	c.writeBulkString("server")
	c.writeBulkString("keyq")
	c.writeBulkString("version")
	c.writeBulkString(redisVersion)
	c.writeBulkString("proto")
	c.writeInt(int64(proto))
	c.writeBulkString("id")
	c.writeInt(c.id)
	c.writeBulkString("mode")
	c.writeBulkString("standalone")
	c.writeBulkString("role")
	c.writeBulkString("master")
	c.writeBulkString("modules")
	c.writeArray(0)
}

func validClientName(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] < '!' || name[i] > '~' {
			return false
		}
	}
	return true
}

func handleClient(c *conn, args [][]byte) {
	sub := strings.ToLower(string(args[1]))
	switch {
	case sub == "id" && len(args) == 2:
		c.writeInt(c.id)
	case sub == "getname" && len(args) == 2:
		if c.name == "" {
			c.writeNull()
			return
		}
		c.writeBulkString(c.name)
	case sub == "setname" && len(args) == 3:
		if !validClientName(string(args[2])) {
			c.writeError("ERR Client names cannot contain spaces, newlines or " +
				"special characters.")
			return
		}
		c.name = string(args[2])
		c.writeOK()
	case sub == "setinfo" && len(args) == 4:
		c.writeOK() // library name and version: accepted, not kept
	case sub == "info" && len(args) == 2:
		c.writeVerbatim(c.describe() + "\n")
	case sub == "id" || sub == "getname" || sub == "setname" || sub == "setinfo" ||
		sub == "info":
		c.writeErrorf("ERR wrong number of arguments for 'client|%s' command", sub)
	default:
		c.writeErrorf("ERR unknown subcommand '%s'. Try CLIENT HELP.", clip(sub, 128))
	}
}

// describe is the connection's line in CLIENT INFO.
func (c *conn) describe() string {
	return fmt.Sprintf("id=%d addr=%s laddr=%s name=%s db=0 resp=%d tot-net-in=%d", c.id,
		c.nc.RemoteAddr(), c.nc.LocalAddr(), c.name, c.proto, c.in.passed.Load())
}

func handleSelect(c *conn, args [][]byte) {
	db, ok := c.parseInt(args[1])
	if !ok {
		return
	}
	if db != 0 {
		c.writeError("ERR DB index is out of range")
		return
	}
	c.writeOK()
}

func handleInfo(c *conn, args [][]byte) {
	all := []string{"server", "clients", "memory", "keyspace"}
	sections := all
	if len(args) > 1 {
		sections = nil
		for _, a := range args[1:] {
			switch s := strings.ToLower(string(a)); s {
			case "all", "default", "everything":
				sections = all
			default:
				if slices.Contains(all, s) && !slices.Contains(sections, s) {
					sections = append(sections, s)
				}
			}
		}
	}

	var parts []string
	for _, s := range all {
		if slices.Contains(sections, s) {
			parts = append(parts, c.s.infoSection(s))
		}
	}
	c.writeVerbatim(strings.Join(parts, "\r\n"))
}

// infoSection renders one INFO section in Redis' format: a "# Title" line, then
// field:value lines, each ending in CRLF.
func (s *Server) infoSection(name string) string {
	var b strings.Builder
	line := func(k string, v any) { fmt.Fprintf(&b, "%s:%v\r\n", k, v) }
	switch name {
	case "server":
		up := time.Since(s.started)
		b.WriteString("# Server\r\n")
		line("redis_version", redisVersion)
		line("keyq_version", s.version)
		line("redis_mode", "standalone")
		line("os", runtime.GOOS+" "+runtime.GOARCH)
		line("arch_bits", strconv.IntSize)
		line("go_version", runtime.Version())
		line("process_id", os.Getpid())
		line("tcp_port", s.port.Load())
		line("uptime_in_seconds", int64(up.Seconds()))
		line("uptime_in_days", int64(up.Hours()/24))
	case "clients":
		b.WriteString("# Clients\r\n")
		line("connected_clients", s.connCount())
		line("blocked_clients", s.blocked.Load())
	case "memory":
		// Redis' fields for its memory and its limit: used_memory is the Go heap in
		// use, maxmemory the limit on what queues hold (keyq serve --max-memory),
		// which counts toward it as keyq_held_bytes.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.WriteString("# Memory\r\n")
		line("used_memory", ms.HeapAlloc)
		line("maxmemory", s.broker.MaxHeldBytes())
		line("maxmemory_policy", "noeviction")
		line("keyq_held_bytes", s.broker.HeldBytes())
	case "keyspace":
		b.WriteString("# Keyspace\r\n")
		if n := len(s.liveKeys()); n > 0 {
			fmt.Fprintf(&b, "db0:keys=%d,expires=0,avg_ttl=0\r\n", n)
		}
	}
	return b.String()
}

// configParams are the settings CONFIG GET reports, as a Redis without persistence
// and with one database would: what redis-benchmark and similar tools ask for.
var configParams = [][2]string{
	{"appendonly", "no"},
	{"databases", "1"},
	{"save", ""},
}

// handleConfig answers CONFIG GET for configParams and the memory limit; keyq is
// configured by its own flags, so nothing can be set.
func handleConfig(c *conn, args [][]byte) {
	if sub := strings.ToLower(string(args[1])); sub != "get" {
		c.writeErrorf("ERR unknown subcommand '%s'. Try CONFIG HELP.", clip(sub, 128))
		return
	}
	if len(args) < 3 {
		c.writeError("ERR wrong number of arguments for 'config|get' command")
		return
	}
	params := append(slices.Clip(configParams),
		[2]string{"maxmemory", strconv.FormatInt(c.s.broker.MaxHeldBytes(), 10)},
		[2]string{"maxmemory-policy", "noeviction"})
	var found [][2]string
	for _, p := range params {
		for _, pattern := range args[2:] {
			if globMatch(p[0], strings.ToLower(string(pattern))) {
				found = append(found, p)
				break
			}
		}
	}
	c.writeMap(len(found))
	for _, p := range found {
		c.writeBulkString(p[0])
		c.writeBulkString(p[1])
	}
}
