package sandbox

// Ring keeps the newest items of a sequence, up to a fixed capacity, and
// counts the older ones it let go: what a service's record of its traffic
// (the call log, SES's sent mail, IoT's publishes) needs so that a sandbox
// left running for hours stays the same size. It does no locking: the owner
// holds its own lock.
type Ring[T any] struct {
	buf     []T
	start   int // index of the oldest item once the buffer is full
	cap     int
	evicted int64
}

// NewRing returns an empty ring that keeps at most capacity items (≥ 1).
func NewRing[T any](capacity int) *Ring[T] {
	return &Ring[T]{cap: max(capacity, 1)}
}

// Add appends v, evicting the oldest item when the ring is full.
func (r *Ring[T]) Add(v T) {
	if len(r.buf) < r.cap {
		r.buf = append(r.buf, v)
		return
	}
	r.buf[r.start] = v
	r.start = (r.start + 1) % r.cap
	r.evicted++
}

// Len is how many items the ring holds.
func (r *Ring[T]) Len() int { return len(r.buf) }

// Cap is how many items the ring holds at most.
func (r *Ring[T]) Cap() int { return r.cap }

// At is the i-th oldest item held (0 ≤ i < Len).
func (r *Ring[T]) At(i int) T { return r.buf[(r.start+i)%len(r.buf)] }

// Evicted is how many items the ring has let go to make room, in all.
func (r *Ring[T]) Evicted() int64 { return r.evicted }

// All is every item held, oldest first, in a new slice.
func (r *Ring[T]) All() []T { return r.From(0) }

// From is the items held from the i-th oldest on, in a new slice.
func (r *Ring[T]) From(i int) []T {
	n := len(r.buf) - i
	if n <= 0 {
		return []T{}
	}
	out := make([]T, 0, n)
	for ; i < len(r.buf); i++ {
		out = append(out, r.At(i))
	}
	return out
}

// Reset forgets every item held; the eviction count stays (forgetting on
// request is not eviction).
func (r *Ring[T]) Reset() {
	r.buf, r.start = nil, 0
}

// Restore replaces what the ring holds with items (the newest Cap of them)
// and its eviction count with evicted plus those it could not take.
func (r *Ring[T]) Restore(items []T, evicted int64) {
	r.Reset()
	r.evicted = evicted
	if over := len(items) - r.cap; over > 0 {
		items = items[over:]
		r.evicted += int64(over)
	}
	r.buf = append(make([]T, 0, len(items)), items...)
}
