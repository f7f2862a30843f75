package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/keyq/keyq/internal/bench"
)

// natsDriver drives NATS JetStream through nats.go: one work-queue stream per queue
// with one durable pull consumer that every worker of the queue shares. A put is a
// publish that waits for the stream's ack (PublishAsync for a round of Depth); a get
// takes messages the consumer pulled, at most Depth buffered, and acks each.
type natsDriver struct {
	url     string
	storage jetstream.StorageType
	depth   int
}

func (d *natsDriver) Name() string { return "nats-jetstream" }

const natsConsumer = "bench"

func (d *natsDriver) Setup(ctx context.Context, queues []string) error {
	nc, err := nats.Connect(d.url)
	if err != nil {
		return fmt.Errorf("connect nats %s: %w", d.url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream context: %w", err)
	}
	for _, q := range queues {
		s, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name:      q,
			Subjects:  []string{q},
			Retention: jetstream.WorkQueuePolicy,
			Storage:   d.storage,
		})
		if err != nil {
			return fmt.Errorf("create stream %s: %w", q, err)
		}
		_, err = s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:   natsConsumer,
			AckPolicy: jetstream.AckExplicitPolicy,
		})
		if err != nil {
			return fmt.Errorf("create consumer on %s: %w", q, err)
		}
	}
	return nil
}

func (d *natsDriver) Dial(context.Context) (bench.Conn, error) {
	nc, err := nats.Connect(d.url)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", d.url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(max(d.depth, 1)))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream context: %w", err)
	}
	return &natsConn{nc: nc, js: js, depth: max(d.depth, 1), subs: map[string]*natsSub{}}, nil
}

type natsConn struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	depth int
	subs  map[string]*natsSub
	acks  []jetstream.PubAckFuture
}

// natsSub is a running Consume whose handler hands messages to Get.
type natsSub struct {
	cc   jetstream.ConsumeContext
	msgs chan jetstream.Msg
	done chan struct{} // closed by Close to release a blocked handler
}

func (c *natsConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	if len(msgs) == 1 {
		_, err := c.js.Publish(ctx, queue, msgs[0])
		return err
	}
	c.acks = c.acks[:0]
	for _, m := range msgs {
		f, err := c.js.PublishAsync(queue, m)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		c.acks = append(c.acks, f)
	}
	for _, f := range c.acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publish ack: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (c *natsConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	sub, err := c.subscribe(ctx, queue)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case m := <-sub.msgs:
		out = append(out, m.Data())
		if err := m.Ack(); err != nil {
			return out, fmt.Errorf("ack: %w", err)
		}
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for len(out) < n {
		select {
		case m := <-sub.msgs:
			out = append(out, m.Data())
			if err := m.Ack(); err != nil {
				return out, fmt.Errorf("ack: %w", err)
			}
		default:
			return out, nil
		}
	}
	return out, nil
}

// subscribe starts pulling from queue's consumer on first use.
func (c *natsConn) subscribe(ctx context.Context, queue string) (*natsSub, error) {
	if sub, ok := c.subs[queue]; ok {
		return sub, nil
	}
	cons, err := c.js.Consumer(ctx, queue, natsConsumer)
	if err != nil {
		return nil, fmt.Errorf("look up consumer of %s: %w", queue, err)
	}
	sub := &natsSub{msgs: make(chan jetstream.Msg, c.depth), done: make(chan struct{})}
	handle := func(m jetstream.Msg) {
		select {
		case sub.msgs <- m:
		case <-sub.done:
		}
	}
	sub.cc, err = cons.Consume(handle, jetstream.PullMaxMessages(c.depth))
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", queue, err)
	}
	c.subs[queue] = sub
	return sub, nil
}

func (c *natsConn) Close() error {
	for _, sub := range c.subs {
		close(sub.done)
		sub.cc.Stop()
	}
	c.nc.Close()
	return nil
}
