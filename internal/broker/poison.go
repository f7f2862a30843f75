package broker

// poisonByte fills a released payload buffer when poisonReleased is set (under the
// race detector, or with the keyqpoison build tag): a front door that writes a
// payload after its Release, or a broker path that still reads a buffer it handed
// out, then sends a run of it instead of, now and then, another message's bytes, so
// that a test comparing what it got with what it put fails every time.
const poisonByte = 0xA5

// poison overwrites buf, a buffer on its way back to the pools.
func poison(buf []byte) {
	for i := range buf {
		buf[i] = poisonByte
	}
}
