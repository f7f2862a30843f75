package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/keyq/keyq/internal/bench"
)

// rabbitDriver drives RabbitMQ through amqp091-go: one classic queue per queue on
// the default exchange. Every put waits for its publisher confirm (a round of Depth
// publishes waits for all of them). A get takes deliveries of a consumer whose
// prefetch is Depth and acks them at once with one multiple ack. Durable runs
// declare durable queues and publish persistent messages, so a confirm means the
// message is on disk.
type rabbitDriver struct {
	url     string
	durable bool
	depth   int
}

func (d *rabbitDriver) Name() string { return "rabbitmq" }

func (d *rabbitDriver) Setup(_ context.Context, queues []string) error {
	conn, err := amqp.Dial(d.url)
	if err != nil {
		return fmt.Errorf("dial rabbitmq: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q, d.durable, false, false, false, nil); err != nil {
			return fmt.Errorf("declare queue %s: %w", q, err)
		}
	}
	return nil
}

func (d *rabbitDriver) Dial(context.Context) (bench.Conn, error) {
	conn, err := amqp.Dial(d.url)
	if err != nil {
		return nil, fmt.Errorf("dial rabbitmq: %w", err)
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		err = ch.Qos(max(d.depth, 1), 0, false)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("set up channel: %w", err)
	}
	rc := &rabbitConn{conn: conn, ch: ch, consuming: map[string]<-chan amqp.Delivery{}}
	rc.mode = amqp.Transient
	if d.durable {
		rc.mode = amqp.Persistent
	}
	return rc, nil
}

type rabbitConn struct {
	conn      *amqp.Connection
	ch        *amqp.Channel
	mode      uint8
	consuming map[string]<-chan amqp.Delivery
	confirms  []*amqp.DeferredConfirmation
}

func (rc *rabbitConn) Put(ctx context.Context, queue string, msgs [][]byte) error {
	rc.confirms = rc.confirms[:0]
	for _, m := range msgs {
		dc, err := rc.ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false,
			amqp.Publishing{DeliveryMode: rc.mode, Body: m})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		rc.confirms = append(rc.confirms, dc)
	}
	for _, dc := range rc.confirms {
		ok, err := dc.WaitContext(ctx)
		if err != nil {
			return fmt.Errorf("wait for confirm: %w", err)
		}
		if !ok {
			return errors.New("rabbitmq nacked a publish")
		}
	}
	return nil
}

func (rc *rabbitConn) Get(ctx context.Context, queue string, n int, wait time.Duration) (
	[][]byte, error) {
	deliveries, err := rc.consume(queue)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()

	var first amqp.Delivery
	select {
	case d, ok := <-deliveries:
		if !ok {
			return nil, errors.New("rabbitmq closed the consumer")
		}
		first = d
	case <-timer.C:
		return nil, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out, last := takeReady(deliveries, first, n)
	if err := rc.ch.Ack(last, true); err != nil {
		return out, fmt.Errorf("ack: %w", err)
	}
	return out, nil
}

// takeReady returns first and the deliveries already waiting, up to n in all, and
// the delivery tag of the last one.
func takeReady(deliveries <-chan amqp.Delivery, first amqp.Delivery, n int) (
	[][]byte, uint64) {
	out, last := [][]byte{first.Body}, first.DeliveryTag
	for len(out) < n {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return out, last
			}
			out, last = append(out, d.Body), d.DeliveryTag
		default:
			return out, last
		}
	}
	return out, last
}

func (rc *rabbitConn) consume(queue string) (<-chan amqp.Delivery, error) {
	if d, ok := rc.consuming[queue]; ok {
		return d, nil
	}
	d, err := rc.ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", queue, err)
	}
	rc.consuming[queue] = d
	return d, nil
}

func (rc *rabbitConn) Close() error { return rc.conn.Close() }
