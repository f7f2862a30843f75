package resp

import (
	"maps"
	"slices"
	"strings"
)

// handleCommand answers COMMAND and its subcommands COUNT, LIST, INFO and DOCS from
// the command table: enough for redis-cli's hints and for clients that route by
// key position.
func handleCommand(c *conn, args [][]byte) {
	if len(args) == 1 {
		names := sortedCommandNames()
		c.writeArray(len(names))
		for _, name := range names {
			c.writeCommandInfo(commands[name])
		}
		return
	}

	switch sub := strings.ToLower(string(args[1])); sub {
	case "count":
		c.writeInt(int64(len(commands)))
	case "list":
		names := sortedCommandNames()
		c.writeArray(len(names))
		for _, name := range names {
			c.writeBulkString(name)
		}
	case "info":
		names := lowerArgs(args[2:])
		if len(names) == 0 {
			names = sortedCommandNames()
		}
		c.writeArray(len(names))
		for _, name := range names {
			if cmd := commands[name]; cmd != nil {
				c.writeCommandInfo(cmd)
			} else {
				c.writeNullArray()
			}
		}
	case "docs":
		names := lowerArgs(args[2:])
		if len(names) == 0 {
			names = sortedCommandNames()
		}
		var known []*command
		for _, name := range names {
			if cmd := commands[name]; cmd != nil {
				known = append(known, cmd)
			}
		}
		c.writeMap(len(known))
		for _, cmd := range known {
			c.writeBulkString(cmd.name)
			c.writeCommandDocs(cmd)
		}
	default:
		c.writeErrorf("ERR unknown subcommand '%s'. Try COMMAND HELP.", clip(sub, 128))
	}
}

func sortedCommandNames() []string {
	return slices.Sorted(maps.Keys(commands))
}

func lowerArgs(args [][]byte) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = strings.ToLower(string(a))
	}
	return out
}

// writeCommandInfo writes the ten-element entry Redis 7 gives for a command.
func (c *conn) writeCommandInfo(cmd *command) {
	c.writeArray(10)
	c.writeBulkString(cmd.name)
	c.writeInt(int64(cmd.arity))
	c.writeSet(len(cmd.flags))
	for _, f := range cmd.flags {
		c.writeSimple(f)
	}
	c.writeInt(int64(cmd.firstKey))
	c.writeInt(int64(cmd.lastKey))
	c.writeInt(int64(cmd.keyStep))

	categories := []string{"@" + cmd.group}
	for _, f := range cmd.flags {
		if f == "write" || f == "fast" || f == "blocking" {
			categories = append(categories, "@"+f)
		}
	}
	c.writeSet(len(categories))
	for _, cat := range categories {
		c.writeSimple(cat)
	}
	c.writeSet(0) // tips
	c.writeSet(0) // key specs
	c.writeSet(0) // subcommands
}

// writeCommandDocs writes the map COMMAND DOCS gives for a command.
func (c *conn) writeCommandDocs(cmd *command) {
	c.writeMap(3)
	c.writeBulkString("summary")
	c.writeBulkString(cmd.summary)
	c.writeBulkString("since")
	c.writeBulkString(cmd.since)
	c.writeBulkString("group")
	c.writeBulkString(cmd.group)
}
