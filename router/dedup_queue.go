package router

// dedupEntry is a key in a partition's queue: its digest and when it
// expires (Unix nanoseconds).
type dedupEntry struct {
	digest  dedupDigest
	expires int64
}

// dedupQueue is a FIFO of entries in fixed-size chunks: it never copies
// entries to grow and hands a chunk back to the GC as soon as its entries
// are popped.
type dedupQueue struct {
	chunks     []*[dedupChunkLen]dedupEntry
	head, tail int // next entry to pop in chunks[0]; next free slot in the last chunk
	n          int
}

func (q *dedupQueue) push(e dedupEntry) {
	if len(q.chunks) == 0 || q.tail == dedupChunkLen {
		q.chunks = append(q.chunks, new([dedupChunkLen]dedupEntry))
		q.tail = 0
	}
	q.chunks[len(q.chunks)-1][q.tail] = e
	q.tail++
	q.n++
}

// front is the oldest entry; the queue must not be empty.
func (q *dedupQueue) front() *dedupEntry { return &q.chunks[0][q.head] }

// pop removes the oldest entry; the queue must not be empty.
func (q *dedupQueue) pop() dedupEntry {
	e := q.chunks[0][q.head]
	q.head++
	q.n--
	switch {
	case q.n == 0: // keep one chunk for the next push
		q.chunks[0] = q.chunks[len(q.chunks)-1]
		clear(q.chunks[1:])
		q.chunks = q.chunks[:1]
		q.head, q.tail = 0, 0
	case q.head == dedupChunkLen:
		q.chunks[0] = nil
		q.chunks = q.chunks[1:]
		q.head = 0
	}
	return e
}
