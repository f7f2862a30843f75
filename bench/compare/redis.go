package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/keyq/keyq/internal/bench"
)

// redisDriver drives Redis lists through go-redis: RPUSH to put, BLPOP to wait for
// a message and LPOP to take one; a round of Depth commands is one pipeline. With
// batches, one RPUSH carries the whole round and one LPOP with a count takes it.
type redisDriver struct {
	addr  string
	batch int
}

func (d *redisDriver) Name() string { return "redis" }

// Configure implements bench.Configurer: Redis has batches (variadic RPUSH, LPOP
// with a count) but no leases.
func (d *redisDriver) Configure(cfg bench.Config) error {
	if cfg.Mix != bench.MixPutGet {
		return fmt.Errorf("operation mix %s on redis: %w", cfg.Mix, bench.ErrNotSupported)
	}
	d.batch = cfg.Batch
	return nil
}

func (d *redisDriver) Setup(context.Context, []string) error { return nil }

func (d *redisDriver) Dial(ctx context.Context) (bench.Conn, error) {
	// One connection per worker, as for every other server.
	c := redis.NewClient(&redis.Options{Addr: d.addr, PoolSize: 1, MinIdleConns: 1})
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("ping redis %s: %w", d.addr, err)
	}
	return &redisConn{c: c, batch: d.batch > 1}, nil
}

type redisConn struct {
	c     *redis.Client
	batch bool
}

func (rc *redisConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	if len(msgs) == 1 {
		return rc.c.RPush(ctx, queue, msgs[0]).Err()
	}
	if rc.batch {
		values := make([]any, len(msgs))
		for i, m := range msgs {
			values[i] = m
		}
		return rc.c.RPush(ctx, queue, values...).Err()
	}
	_, err := rc.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			p.RPush(ctx, queue, m)
		}
		return nil
	})
	return err
}

func (rc *redisConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	if n > 1 && rc.batch {
		out, err := rc.popCount(ctx, queue, n)
		if len(out) > 0 || err != nil {
			return out, err
		}
	}
	if n > 1 && !rc.batch {
		out, err := rc.popMany(ctx, queue, n)
		if len(out) > 0 || err != nil {
			return out, err
		}
	}
	// go-redis sends a blocking timeout in whole seconds, at least one.
	kv, err := rc.c.BLPop(ctx, max(wait, time.Second), queue).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return [][]byte{[]byte(kv[1])}, nil
}

// popMany pipelines n LPOPs and returns what they took.
func (rc *redisConn) popMany(ctx context.Context, queue string, n int) ([][]byte, error) {
	cmds, err := rc.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for range n {
			p.LPop(ctx, queue)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	var out [][]byte
	for _, cmd := range cmds {
		if b, err := cmd.(*redis.StringCmd).Bytes(); err == nil {
			out = append(out, b)
		}
	}
	return out, nil
}

// popCount takes up to n messages with one LPOP key count.
func (rc *redisConn) popCount(ctx context.Context, queue string, n int) ([][]byte, error) {
	vals, err := rc.c.LPopCount(ctx, queue, n).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, err
}

func (rc *redisConn) Close() error { return rc.c.Close() }
