package bench

import (
	"errors"
	"fmt"
	"time"
)

// Operation mixes a run can drive.
const (
	MixPutGet        = "put-get"         // put, then a get that removes the message
	MixPutReserveAck = "put-reserve-ack" // put, then a lease and its ack
)

// ErrNotSupported is returned for options the servers cannot drive yet.
var ErrNotSupported = errors.New("bench: not supported yet")

// Config is the shape of one run. The zero value of an optional field takes the
// default named in its comment; Validate fills them in.
type Config struct {
	Producers    int           // producer connections, default 1
	Consumers    int           // consumer connections, default 1
	MessageBytes int           // size of each message, at least HeaderBytes; default 100
	Queues       int           // number of queues, default 1
	Count        int64         // messages to put in total; 0 means run for Duration
	Duration     time.Duration // how long producers put; with Count, an upper bound
	Depth        int           // messages in flight per connection, default 1
	Batch        int           // messages per request; 0 or 1 means no batches
	Rate         float64       // messages per second put, all producers; 0: no limit
	Mix          string        // MixPutGet (default) or MixPutReserveAck
	QueuePrefix  string        // queue names are prefix + index; default "bench-<run>-"
	DrainTimeout time.Duration // how long consumers may drain after producers stop
	GetWait      time.Duration // how long one get waits for a message, default 50ms

	// Progress, if set, is called about ten times a second from its own goroutine.
	Progress func(Progress)
}

// Progress is a snapshot of a running benchmark.
type Progress struct {
	Put       int64         // acknowledged puts so far
	Delivered int64         // messages consumers took so far
	Elapsed   time.Duration // since the producers started
}

// Validate checks c and fills in defaults.
func (c *Config) Validate() error {
	setDefault(&c.Producers, 1)
	setDefault(&c.Consumers, 1)
	setDefault(&c.MessageBytes, 100)
	setDefault(&c.Queues, 1)
	setDefault(&c.Depth, 1)
	setDefault(&c.Batch, 1)
	if c.Mix == "" {
		c.Mix = MixPutGet
	}
	if c.GetWait == 0 {
		c.GetWait = 50 * time.Millisecond
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Count == 0 && c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	return c.check()
}

func (c *Config) check() error {
	switch {
	case c.Producers < 0 || c.Consumers < 0 || c.Queues < 0 || c.Depth < 0:
		return errors.New("producers, consumers, queues and depth must be positive")
	case c.MessageBytes < HeaderBytes:
		return fmt.Errorf("message size %d is below the %d-byte header",
			c.MessageBytes, HeaderBytes)
	case c.Count < 0 || c.Duration < 0 || c.Rate < 0:
		return errors.New("count, duration and rate must not be negative")
	case c.Mix != MixPutGet && c.Mix != MixPutReserveAck:
		return fmt.Errorf("unknown operation mix %q (want %s or %s)",
			c.Mix, MixPutGet, MixPutReserveAck)
	case c.Batch < 0:
		return fmt.Errorf("batch size %d is negative", c.Batch)
	}
	return nil
}

// Configurer is implemented by drivers that shape their connections after the run
// (pipelining depth, batch size, operation mix). Run calls Configure before anything
// else; it returns an error wrapping ErrNotSupported for a configuration the driver
// cannot run.
type Configurer interface {
	Configure(cfg Config) error
}

// configure hands cfg to d. A driver that is not a Configurer runs only the put-get
// mix, one message per request.
func configure(cfg Config, d Driver) error {
	if c, ok := d.(Configurer); ok {
		return c.Configure(cfg)
	}
	switch {
	case cfg.Mix != MixPutGet:
		return fmt.Errorf("operation mix %q on %s: %w", cfg.Mix, d.Name(), ErrNotSupported)
	case cfg.Batch > 1:
		return fmt.Errorf("batch size %d on %s: %w (use depth to pipeline)", cfg.Batch,
			d.Name(), ErrNotSupported)
	}
	return nil
}

func setDefault(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}
