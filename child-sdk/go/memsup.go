// Package memsup is the child SDK for Go workers, standard library only:
// the worker's end of the channel to memsup, as child-sdk/memsup.c is for
// C.  It sends the handshake and stats (heap figures from the Go runtime
// and gauges), answers memsup's save and purge requests, sends checkpoints
// and verifies the state memsup hands back.  docs/protocol.md is the wire
// protocol.
//
// A process not started by memsup (no MEMSUP_FD) runs exactly as before:
// every call is then a cheap no-op and Restore returns no state.  The SDK
// never exits, panics or prints in the worker; once memsup has gone (EOF,
// EPIPE) reporting stops and calls return ErrGone.
//
// Heap figures come from runtime.ReadMemStats, which stops the world for
// a moment (tens of microseconds on a small heap) once per report:
// "allocated" (heap-in-use) is HeapInuse, "active" HeapAlloc, "resident"
// HeapSys-HeapReleased, "retained" HeapIdle-HeapReleased (free spans the
// runtime keeps), "mapped" Sys.  A purge is debug.FreeOSMemory().
package memsup

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Version is the SDK's version, sent in hello.
const Version = "0.1.0"

// WireVersion is the protocol version this SDK speaks.
const WireVersion = 1

const (
	fdEnv           = "MEMSUP_FD"
	frameHdr        = 8
	frameMax        = 64 * 1024
	frameJSON       = 'J'
	welcomeTimeout  = 2 * time.Second
	defaultInterval = 50 * time.Millisecond
	gaugesMax       = 64
	gaugeNameMax    = 64

	// Linux ABI values (include/uapi/linux/fcntl.h, memfd.h); Go 1.19's
	// syscall package does not name them.
	fAddSeals       = 1033
	fSealSeal       = 0x1
	fSealShrink     = 0x2
	fSealGrow       = 0x4
	fSealWrite      = 0x8
	mfdCloexec      = 0x1
	mfdAllowSealing = 0x2
	seals           = fSealWrite | fSealShrink | fSealGrow | fSealSeal
)

var (
	// ErrGone: memsup closed the channel; the worker goes on unsupervised
	// by the SDK (memsup, if alive, still measures it from /proc).
	ErrGone = errors.New("memsup: memsup has gone")
	// ErrCorrupt: the handed-over state failed its size or CRC-32C check.
	ErrCorrupt = errors.New("memsup: saved state is corrupt")
	// ErrProtocol: memsup speaks another protocol version.
	ErrProtocol = errors.New("memsup: memsup speaks another protocol version")
	// ErrBusy: Checkpoint was called while a save was running (from the
	// save callback itself, or beside it); that save sends a state anyway.
	ErrBusy = errors.New("memsup: a save is already running")
)

// sdk is the one channel of the process.  mu guards the connection (every
// write), gauges and settings, and is held only briefly; saveMu serialises
// save callbacks.  Only one goroutine reads at a time: Init, then the
// Start goroutine, which own the input buffer.
type sdk struct {
	mu         sync.Mutex
	saveMu     sync.Mutex
	conn       *net.UnixConn
	gone       bool
	interval   time.Duration
	limit, gen uint64
	metric     string
	saveFn     func(io.Writer) error
	gauges     map[string]float64
	lastReport time.Time
	in         []byte
	rbuf, oob  []byte // read buffers, reused: a report every interval must not churn the heap
	started    bool

	stateFd                 int
	hasState, restoreCalled bool
	stateBytes              uint64
	stateCRC                uint32
	restoreErr              error
	restored                []byte
	restoredUnixUs          int64
}

var g = sdk{interval: defaultInterval, stateFd: -1, gauges: map[string]float64{}}

// disable stops using the channel.  Caller holds mu.
func (s *sdk) disable(gone bool) {
	if s.conn != nil {
		s.conn.Close()
	}
	s.conn = nil
	s.gone = s.gone || gone
}

func (s *sdk) idleErr() error {
	if s.gone {
		return ErrGone
	}
	return nil
}

// send writes msg as one frame, with passFd attached to its first byte when
// >= 0.  With nonblock, a socket that stays full for an interval drops the
// frame; a frame once started is always finished, or the stream would lose
// its framing.  Caller holds mu.
func (s *sdk) send(msg interface{}, passFd int, nonblock bool) error {
	if s.conn == nil {
		return s.idleErr()
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if len(payload) > frameMax {
		return syscall.EMSGSIZE
	}
	buf := make([]byte, frameHdr+len(payload))
	buf[0], buf[1], buf[2], buf[3] = 'm', 's', WireVersion, frameJSON
	binary.BigEndian.PutUint32(buf[4:], uint32(len(payload)))
	copy(buf[frameHdr:], payload)
	var oob []byte
	if passFd >= 0 {
		oob = syscall.UnixRights(passFd)
	}
	if nonblock {
		s.conn.SetWriteDeadline(time.Now().Add(s.interval))
	}
	n, _, err := s.conn.WriteMsgUnix(buf, oob, nil)
	if nonblock {
		s.conn.SetWriteDeadline(time.Time{})
		if n == 0 && isTimeout(err) {
			return syscall.EAGAIN
		}
	}
	if err == nil && n < len(buf) {
		_, err = s.conn.Write(buf[n:])
	}
	if err != nil {
		s.disable(true)
		return ErrGone
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readSome reads what memsup sent, waiting until deadline at most.  A
// descriptor that arrives is kept as the state when keepFd and none is
// held, and closed otherwise.  Returns ErrGone once memsup has gone.
func (s *sdk) readSome(deadline time.Time, keepFd bool) error {
	s.mu.Lock()
	c := s.conn
	s.mu.Unlock()
	if c == nil {
		return ErrGone
	}
	if s.rbuf == nil {
		s.rbuf = make([]byte, frameHdr+frameMax)
		s.oob = make([]byte, syscall.CmsgSpace(4*4))
	}
	buf, oob := s.rbuf, s.oob
	c.SetReadDeadline(deadline)
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	// A failed read reports -1 bytes.
	if n < 0 {
		n = 0
	}
	if oobn > 0 && oobn <= len(oob) {
		if cms, perr := syscall.ParseSocketControlMessage(oob[:oobn]); perr == nil {
			for _, cm := range cms {
				fds, ferr := syscall.ParseUnixRights(&cm)
				if ferr != nil {
					continue
				}
				for _, fd := range fds {
					syscall.CloseOnExec(fd)
					s.mu.Lock()
					if keepFd && s.stateFd < 0 {
						s.stateFd = fd
					} else {
						syscall.Close(fd)
					}
					s.mu.Unlock()
				}
			}
		}
	}
	s.in = append(s.in, buf[:n]...)
	if err != nil && isTimeout(err) && n == 0 {
		return nil
	}
	if err != nil || n == 0 {
		s.mu.Lock()
		s.disable(true)
		s.mu.Unlock()
		return ErrGone
	}
	return nil
}

// nextFrame removes and returns the next whole frame's JSON object (empty
// for a payload that is not one), or nil when more bytes are needed.  It
// skips garbage, oversized headers and frames of another version or kind,
// as the C SDK does.
func (s *sdk) nextFrame() map[string]interface{} {
	for {
		b := s.in
		if len(b) == 0 {
			return nil
		}
		if b[0] != 'm' || (len(b) > 1 && b[1] != 's') {
			i := 1
			for i < len(b) && b[i] != 'm' {
				i++
			}
			s.in = b[i:]
			continue
		}
		if len(b) < frameHdr {
			return nil
		}
		n := int(binary.BigEndian.Uint32(b[4:8]))
		if n > frameMax {
			s.in = b[frameHdr:]
			continue
		}
		if len(b) < frameHdr+n {
			return nil
		}
		payload := b[frameHdr : frameHdr+n]
		s.in = b[frameHdr+n:]
		if b[2] != WireVersion || b[3] != frameJSON {
			continue
		}
		var m map[string]interface{}
		if json.Unmarshal(payload, &m) != nil || m == nil {
			m = map[string]interface{}{}
		}
		// Keep the buffer from pinning old bytes forever.
		if len(s.in) == 0 {
			s.in = nil
		}
		return m
	}
}

// uintOf is a non-negative whole member, or 0 when absent or malformed.
func uintOf(m map[string]interface{}, k string) uint64 {
	f, ok := m[k].(float64)
	if !ok || f < 0 || f >= 1<<64 || f != math.Trunc(f) {
		return 0
	}
	return uint64(f)
}

// heap reads the runtime's figures.
func heap() (h map[string]uint64, gauges map[string]float64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h = map[string]uint64{
		"allocated": ms.HeapInuse,
		"active":    ms.HeapAlloc,
		"resident":  ms.HeapSys - ms.HeapReleased,
		"retained":  ms.HeapIdle - ms.HeapReleased,
		"mapped":    ms.Sys,
	}
	gauges = map[string]float64{
		"go.heap_alloc":    float64(ms.HeapAlloc),
		"go.heap_released": float64(ms.HeapReleased),
		"go.heap_objects":  float64(ms.HeapObjects),
		"go.gc.num":        float64(ms.NumGC),
		"go.goroutines":    float64(runtime.NumGoroutine()),
	}
	return h, gauges
}

// reportLocked sends a stats report.  Caller holds mu.
func (s *sdk) reportLocked() error {
	s.lastReport = time.Now()
	h, gauges := heap()
	for k, v := range s.gauges {
		gauges[k] = v
	}
	return s.send(map[string]interface{}{"t": "stats", "heap": h, "gauges": gauges}, -1, true)
}

// takeWelcome takes the settings and the state announcement.  Caller
// holds mu.
func (s *sdk) takeWelcome(w map[string]interface{}) error {
	if v, _ := w["v"].(float64); v != WireVersion {
		return ErrProtocol
	}
	if iv, ok := w["interval_ms"].(float64); ok && iv >= 1 && iv <= 3600000 {
		s.interval = time.Duration(iv) * time.Millisecond
	}
	s.limit = uintOf(w, "limit")
	s.gen = uintOf(w, "gen")
	if m, ok := w["metric"].(string); ok {
		s.metric = m
	}
	if st, ok := w["state"].(map[string]interface{}); ok {
		// A state announced without its memfd is lost: Restore reports
		// it corrupt.
		s.hasState = true
		s.stateBytes = uintOf(st, "bytes")
		s.stateCRC = uint32(uintOf(st, "crc32c"))
	} else if s.stateFd >= 0 {
		syscall.Close(s.stateFd)
		s.stateFd = -1
	}
	return nil
}

// Init connects to memsup when $MEMSUP_FD is set: it sends hello and waits
// at most 2 s for the welcome (with the saved state, if any).  It returns
// nil when connected or when not under memsup (Active says which), or the
// reason the channel is unusable.
func Init() error {
	env, ok := os.LookupEnv(fdEnv)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn != nil || !ok {
		return nil
	}
	// Our children must not inherit the channel or its name.
	os.Unsetenv(fdEnv)
	fd, err := strconv.Atoi(env)
	if err != nil || fd < 0 {
		return fmt.Errorf("memsup: bad %s=%q", fdEnv, env)
	}
	// A stale variable may name another file of the worker's: leave any
	// descriptor that is not a socket alone.
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("memsup: %s=%d: %w", fdEnv, fd, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return fmt.Errorf("memsup: %s=%d: %w", fdEnv, fd, syscall.ENOTSOCK)
	}
	f := os.NewFile(uintptr(fd), "memsup")
	c, err := net.FileConn(f) // a close-on-exec duplicate
	f.Close()
	if err != nil {
		return fmt.Errorf("memsup: channel: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return fmt.Errorf("memsup: %s=%d: not a unix socket", fdEnv, fd)
	}
	g.conn = uc
	hello := map[string]interface{}{"t": "hello", "v": WireVersion, "pid": os.Getpid(),
		"allocator": "go", "sdk": "go-" + Version}
	err = g.send(hello, -1, false)
	if err == nil {
		g.mu.Unlock()
		err = g.waitWelcome()
		g.mu.Lock()
	}
	if err != nil {
		g.disable(false)
		if g.stateFd >= 0 {
			syscall.Close(g.stateFd)
		}
		g.stateFd = -1
		g.hasState = false
	}
	return err
}

// waitWelcome reads frames until the welcome; later frames stay buffered
// for the Start goroutine.  Caller does not hold mu.
func (s *sdk) waitWelcome() error {
	deadline := time.Now().Add(welcomeTimeout)
	for {
		for m := s.nextFrame(); m != nil; m = s.nextFrame() {
			if m["t"] == "welcome" {
				s.mu.Lock()
				err := s.takeWelcome(m)
				s.mu.Unlock()
				return err
			}
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("memsup: no welcome: %w", syscall.ETIMEDOUT)
		}
		if err := s.readSome(deadline, true); err != nil {
			return err
		}
	}
}

// Active reports whether the worker is connected to memsup.
func Active() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.conn != nil
}

// OnSave registers the save callback: it writes the worker's state to w
// and returns nil, or an error to report a failed save (memsup then keeps
// the last good state).  It runs on the Start goroutine, or on the caller
// of Checkpoint.
func OnSave(fn func(w io.Writer) error) {
	g.mu.Lock()
	g.saveFn = fn
	g.mu.Unlock()
}

// Restore returns the state memsup handed over, verified (size and
// CRC-32C), as a copy the caller owns.  It returns nil, nil when there is
// none (first start, not under memsup) and nil, ErrCorrupt when it failed
// the check.
func Restore() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.hasState {
		return nil, nil
	}
	if g.restoreCalled {
		return g.restored, g.restoreErr
	}
	g.restoreCalled = true
	g.restoreErr = ErrCorrupt
	var st syscall.Stat_t
	if g.stateFd < 0 || syscall.Fstat(g.stateFd, &st) != nil || uint64(st.Size) != g.stateBytes ||
		g.stateBytes > uint64(math.MaxInt) {
		return nil, g.restoreErr
	}
	data := make([]byte, g.stateBytes)
	for off := 0; off < len(data); {
		n, err := syscall.Pread(g.stateFd, data[off:], int64(off))
		if err == syscall.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return nil, g.restoreErr
		}
		off += n
	}
	if CRC32C(data) != g.stateCRC {
		return nil, g.restoreErr
	}
	g.restored, g.restoreErr = data, nil
	g.restoredUnixUs = time.Now().UnixMicro()
	return data, nil
}

// Ready tells memsup the worker is up (state restored or not) and drops
// the SDK's reference to the handed-over state.  Call it once, after
// Restore.
func Ready() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	how := "none"
	if g.hasState && g.restoreCalled {
		how = "restored"
		if g.restoreErr != nil {
			how = "corrupt"
		}
	}
	if g.stateFd >= 0 {
		syscall.Close(g.stateFd)
	}
	g.stateFd, g.hasState, g.restored = -1, false, nil
	if g.conn == nil {
		return g.idleErr()
	}
	// Stats first, so memsup's "after" figures, taken when ready arrives,
	// include heap-in-use after the restore.
	g.reportLocked()
	msg := map[string]interface{}{"t": "ready", "restore": how}
	if g.restoredUnixUs != 0 {
		msg["restored_unix_us"] = g.restoredUnixUs
	}
	return g.send(msg, -1, false)
}

// stateWriter checksums and counts what the save callback writes.
type stateWriter struct {
	w     *bufio.Writer
	crc   hash.Hash32
	bytes uint64
}

func (sw *stateWriter) Write(p []byte) (int, error) {
	n, err := sw.w.Write(p)
	sw.crc.Write(p[:n])
	sw.bytes += uint64(n)
	return n, err
}

// save runs the callback into a sealed memfd and sends "state"; on failure
// it sends "save_failed" when replyFailure.  Returns the save's or the
// send's error.
func (s *sdk) save(seq uint64, kind string, replyFailure bool) error {
	if kind == "checkpoint" {
		// A checkpoint from inside the save callback would wait for itself.
		if !s.saveMu.TryLock() {
			return ErrBusy
		}
	} else {
		s.saveMu.Lock()
	}
	defer s.saveMu.Unlock()
	s.mu.Lock()
	fn := s.saveFn
	s.mu.Unlock()
	var msg map[string]interface{}
	fd, err := -1, error(nil)
	if fn == nil {
		err = errors.New("no save callback registered")
	} else if fd, err = memfdCreate("memsup-state"); err == nil {
		f := os.NewFile(uintptr(fd), "memsup-state")
		defer f.Close()
		sw := &stateWriter{w: bufio.NewWriterSize(f, 1<<20), crc: crc32.New(castagnoli)}
		err = fn(sw)
		if err == nil {
			err = sw.w.Flush()
		}
		// Sealed, the bytes cannot change under memsup or the next worker.
		if err == nil {
			if _, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fAddSeals, seals); e != 0 {
				err = e
			}
		}
		msg = map[string]interface{}{"t": "state", "seq": seq, "kind": kind,
			"bytes": sw.bytes, "crc32c": sw.crc.Sum32()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if !replyFailure {
			return err
		}
		e := err.Error()
		if len(e) > 127 {
			e = e[:127]
		}
		if serr := s.send(map[string]interface{}{"t": "save_failed", "seq": seq, "error": e}, -1, false); serr != nil {
			return serr
		}
		return err
	}
	return s.send(msg, fd, false)
}

func memfdCreate(name string) (int, error) {
	p, err := syscall.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, e := syscall.Syscall(sysMemfdCreate, uintptr(unsafe.Pointer(p)), mfdCloexec|mfdAllowSealing, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

func (s *sdk) purge(seq uint64) error {
	before, _ := heap()
	debug.FreeOSMemory()
	after, _ := heap()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.send(map[string]interface{}{"t": "purged", "seq": seq,
		"resident_before": before["resident"], "resident_after": after["resident"]}, -1, false)
	if err == nil {
		// memsup judges the purge by the next figures: send them now.
		err = s.reportLocked()
	}
	return err
}

// handle answers one message; unknown types are ignored so that a newer
// memsup can talk to this SDK.
func (s *sdk) handle(m map[string]interface{}) {
	switch m["t"] {
	case "save":
		s.save(uintOf(m, "seq"), "save", true)
	case "purge":
		s.purge(uintOf(m, "seq"))
	}
}

// Checkpoint calls the save callback now and hands the result to memsup
// as the state to restore if the worker later crashes.  It returns ErrBusy
// when a save is already running (also when called from the callback).
func Checkpoint() error {
	g.mu.Lock()
	active, err := g.conn != nil, g.idleErr()
	g.mu.Unlock()
	if !active {
		return err
	}
	return g.save(0, "checkpoint", false)
}

// GaugeSet sets a named gauge sent with every stats report.
func GaugeSet(name string, v float64) error {
	if name == "" || math.IsNaN(v) || math.IsInf(v, 0) {
		return syscall.EINVAL
	}
	if len(name) >= gaugeNameMax {
		return syscall.ENAMETOOLONG
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.gauges[name]; !ok && len(g.gauges) >= gaugesMax {
		return syscall.E2BIG
	}
	g.gauges[name] = v
	return nil
}

// Report sends a stats report now.
func Report() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conn == nil {
		return g.idleErr()
	}
	return g.reportLocked()
}

// Heap returns the figures a report would send.
func Heap() map[string]uint64 {
	h, _ := heap()
	return h
}

// Start runs the SDK in a goroutine: it answers memsup's requests as they
// arrive and reports every interval, until memsup goes away.  The save
// callback runs on that goroutine.  Call it after Init (and Ready).
func Start() {
	g.mu.Lock()
	if g.conn == nil || g.started {
		g.mu.Unlock()
		return
	}
	g.started = true
	g.mu.Unlock()
	go loop()
}

func loop() {
	for {
		g.mu.Lock()
		next := g.lastReport.Add(g.interval)
		g.mu.Unlock()
		if now := time.Now(); next.Before(now) {
			next = now
		}
		err := g.readSome(next, false)
		for m := g.nextFrame(); m != nil; m = g.nextFrame() {
			g.handle(m)
		}
		if err != nil {
			return
		}
		g.mu.Lock()
		if g.conn != nil && time.Since(g.lastReport) >= g.interval {
			g.reportLocked()
		}
		gone := g.conn == nil
		g.mu.Unlock()
		if gone {
			return
		}
	}
}
