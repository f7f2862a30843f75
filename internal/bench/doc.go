// Package bench is keyq's load generator: producers put numbered messages on a set of
// queues, consumers take them, and the run reports throughput, latency from HDR
// histograms, errors, and whether every acknowledged message arrived exactly once.
//
// The generator knows no wire protocol. It drives any queue server through a Driver,
// so `keyq bench` (the keyq driver in this package) and the side-by-side comparison in
// bench/compare (drivers for Redis, beanstalkd, NATS JetStream and RabbitMQ) measure
// every server with the same loops.
//
// # Payload
//
// Each message starts with a 20-byte header: the producer id (u32), the producer's
// sequence number (u64) and the time it was sent (u64 Unix nanoseconds), all
// big-endian; a fixed pattern pads it to the message size. Consumers decode the
// header to check delivery and to measure end-to-end latency.
//
// # Shape of a run
//
// Producer p writes to the queues q with q mod P == p (or to queue p mod Q when there
// are fewer queues than producers), one round of Depth messages at a time: the round
// is sent pipelined and the producer waits for every acknowledgement before the next.
// Consumers own queues the same way and ask for up to Depth messages per call. A run
// ends when the producers reached their count or the duration and the consumers took
// every acknowledged message, or when the drain timeout expires.
package bench
