package memsup

import (
	"encoding/binary"
	"io"
	"math"
	"os"
	"reflect"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func frame(payload string, version, kind byte) []byte {
	b := []byte{'m', 's', version, kind, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[4:], uint32(len(payload)))
	return append(b, payload...)
}

func TestCRC32CMatchesMemsup(t *testing.T) {
	if got := CRC32C([]byte("123456789")); got != 0xE3069283 {
		t.Fatalf("CRC32C = %#x", got)
	}
}

func TestWithoutMemsupEveryCallIsANoOp(t *testing.T) {
	os.Unsetenv("MEMSUP_FD")
	if err := Init(); err != nil || Active() {
		t.Fatalf("Init = %v, Active = %v", err, Active())
	}
	if data, err := Restore(); data != nil || err != nil {
		t.Fatalf("Restore = %v, %v", data, err)
	}
	for name, err := range map[string]error{"Ready": Ready(), "Checkpoint": Checkpoint(), "Report": Report()} {
		if err != nil {
			t.Errorf("%s = %v", name, err)
		}
	}
	Start()
	if Heap()["allocated"] == 0 {
		t.Error("heap-in-use is 0")
	}
}

func TestGaugesRefuseBadNamesAndValues(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
	}{{"", 1}, {string(make([]byte, 64)), 1}, {"ok", math.NaN()}, {"ok", math.Inf(1)}} {
		if GaugeSet(c.name, c.v) == nil {
			t.Errorf("GaugeSet(%q, %v) accepted", c.name, c.v)
		}
	}
	if err := GaugeSet("ok", 2); err != nil {
		t.Error(err)
	}
}

func TestFramesSkipGarbageOtherVersionsAndKinds(t *testing.T) {
	var s sdk
	s.in = append(s.in, "xyz"...)
	s.in = append(s.in, frame(`{"t":"save","seq":1}`, 2, 'J')...)
	s.in = append(s.in, frame(`{"t":"save","seq":2}`, 1, 'B')...)
	s.in = append(s.in, frame(`not json`, 1, 'J')...)
	s.in = append(s.in, []byte{'m', 's', 1, 'J', 0, 1, 0, 1}...) // 65537 bytes: too big
	s.in = append(s.in, frame(`{"t":"purge","seq":3}`, 1, 'J')...)
	last := frame(`{"t":"save","seq":4}`, 1, 'J')
	s.in = append(s.in, last[:len(last)-1]...)
	var got []map[string]interface{}
	for m := s.nextFrame(); m != nil; m = s.nextFrame() {
		got = append(got, m)
	}
	want := []map[string]interface{}{{}, {"t": "purge", "seq": float64(3)}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
	if len(s.in) != len(last)-1 {
		t.Fatalf("partial frame not kept: %d bytes left", len(s.in))
	}
}

// connect plays memsup for a handshake on a socketpair and returns its end.
func connect(t *testing.T) *os.File {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[0]), "memsup")
	os.Setenv("MEMSUP_FD", strconv.Itoa(fds[1]))
	go func() {
		peer.Read(make([]byte, 4096)) // the hello
		peer.Write(frame(`{"t":"welcome","v":1,"gen":1,"interval_ms":50,"state":null}`, 1, 'J'))
	}()
	if err := Init(); err != nil || !Active() {
		t.Fatalf("Init = %v, Active = %v", err, Active())
	}
	return peer
}

func TestCheckpointFromTheSaveCallbackDoesNotDeadlock(t *testing.T) {
	peer := connect(t)
	defer func() {
		peer.Close()
		g.mu.Lock()
		g.disable(false)
		g.mu.Unlock()
	}()
	inner := make(chan error, 1)
	OnSave(func(w io.Writer) error {
		inner <- Checkpoint()
		_, err := w.Write([]byte("x"))
		return err
	})
	done := make(chan error, 1)
	go func() { done <- Checkpoint() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Checkpoint = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Checkpoint from the save callback deadlocked")
	}
	if err := <-inner; err != ErrBusy {
		t.Fatalf("inner Checkpoint = %v, want ErrBusy", err)
	}
}
