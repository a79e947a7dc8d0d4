package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
)

// fuzzBase is a small valid store's files (several blocks, removes, a
// compaction), and the messages it holds by sequence.
type fuzzBase struct {
	files map[string][]byte
	msgs  map[uint64]Msg
}

func buildFuzzBase(t testing.TB, compress bool) fuzzBase {
	dir := t.TempDir()
	w := NewWriter(OSFS{}, SyncPolicy{})
	s, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 1024, Compress: compress})
	if err != nil {
		t.Fatal(err)
	}
	b := fuzzBase{files: map[string][]byte{}, msgs: map[uint64]Msg{}}
	for i := 1; i <= 40; i++ {
		subj, data := fmt.Sprintf("f.%d", i%3), strings.Repeat(fmt.Sprint(i), i%9+1)
		seq, err := s.Append(subj, nil, []byte(data), int64(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		b.msgs[seq] = Msg{Seq: seq, Subject: subj, Data: []byte(data)}
	}
	s.Remove(7)
	s.Remove(30)
	s.Compact(5)
	done := make(chan error, 1)
	seq, _ := s.Append("last", nil, []byte("x"), 0, func(_ uint64, err error) { done <- err })
	b.msgs[seq] = Msg{Seq: seq, Subject: "last", Data: []byte("x")}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s.Close()
	w.Close()
	names, _ := OSFS{}.ReadDir(dir)
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b.files[n] = data
	}
	return b
}

// FuzzRecover damages one file of a valid store (overwrites, truncates,
// appends, or adds a stray block) and opens it: recovery must not panic,
// must finish quickly, must return only messages that were written (a
// record failing its checksum is never served), and must leave a store
// that takes appends and reopens to the same state.
func FuzzRecover(f *testing.F) {
	bases := [2]fuzzBase{buildFuzzBase(f, false), buildFuzzBase(f, true)}
	// op%5 picks the damage, op/5%2 the base (plain or s2-compressed).
	f.Add(uint8(0), uint8(0), uint32(0), []byte{0xff, 0xff, 0xff, 0xff})   // huge body length
	f.Add(uint8(0), uint8(0), uint32(4), []byte{3})                        // kind flipped
	f.Add(uint8(1), uint8(0), uint32(40), []byte("garbage in the middle")) // mid-block
	f.Add(uint8(0), uint8(1), uint32(17), []byte(nil))                     // truncate
	f.Add(uint8(0), uint8(2), uint32(0), []byte{0x10, 0, 0, 0, 1, 2, 3})   // torn tail appended
	f.Add(uint8(1), uint8(3), uint32(5), []byte("stray block"))            // a stray block file
	f.Add(uint8(9), uint8(8), uint32(0), make([]byte, 64))                 // compressed base, stray zeros
	f.Add(uint8(3), uint8(6), uint32(1), []byte{0, 0, 0, 0})               // compressed base, truncate
	// Valid records with hostile values: a message at 0, at 2^64-1, a
	// compaction to 2^64-1, then a message below it.
	f.Add(uint8(2), uint8(4), uint32(0), []byte{
		1, 0, 0, 0, 0, 0, 0, 0, 0,
		1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		1, 9, 0, 0, 0, 0, 0, 0, 0})
	f.Add(uint8(0), uint8(9), uint32(0), []byte{ // compressed base: far message, delete, unknown kind
		4, 0, 0, 0, 0, 0, 0, 0, 0x40,
		2, 0, 0, 0, 0, 0, 0, 0, 0x40,
		99, 1, 0, 0, 0, 0, 0, 0, 0,
		3, 0, 0, 0, 0, 0, 0, 0xf0, 0xff})
	f.Fuzz(func(t *testing.T, file, op uint8, off uint32, data []byte) {
		base := bases[op/5%2]
		dir := t.TempDir()
		names := make([]string, 0, len(base.files))
		for n, b := range base.files {
			names = append(names, n)
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if len(names) == 0 {
			t.Fatal("no base files")
		}
		sortStrings(names)
		name := filepath.Join(dir, names[int(file)%len(names)])
		orig := base.files[names[int(file)%len(names)]]
		crafted := false
		switch op % 5 {
		case 0: // overwrite in place
			b := append([]byte(nil), orig...)
			at := int(off) % (len(b) + 1)
			b = append(b[:at], append(append([]byte(nil), data...), b[min(at+len(data), len(b)):]...)...)
			os.WriteFile(name, b, 0o644)
		case 1: // truncate
			os.WriteFile(name, orig[:int(off)%(len(orig)+1)], 0o644)
		case 2: // append
			os.WriteFile(name, append(append([]byte(nil), orig...), data...), 0o644)
		case 3: // a stray block after (or between) the real ones
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("%08d.blk", off%64)), data, 0o644)
		case 4: // valid records with any kind and sequence: 9 bytes each
			b := append([]byte(nil), orig...)
			for ; len(data) >= 9; data = data[9:] {
				var body []byte
				if data[0] == recMsgS2 {
					body = s2.Encode(nil, []byte("d"))
				} else if data[0] == recMsg {
					body = []byte("d")
				}
				b = appendRecord(b, data[0], binary.LittleEndian.Uint64(data[1:]), 0, "c", nil, body)
			}
			os.WriteFile(name, b, 0o644)
			crafted = true
		}

		open := func() *FileStore {
			w := NewWriter(OSFS{}, SyncPolicy{})
			t.Cleanup(func() { w.Close() })
			res := make(chan *FileStore, 1)
			go func() {
				s, err := OpenFileStore(FileStoreConfig{Dir: dir, Writer: w, MaxBlock: 1024})
				if err != nil {
					t.Errorf("recovery failed: %v", err)
				}
				res <- s
			}()
			select {
			case s := <-res:
				if s == nil {
					t.FailNow()
				}
				return s
			case <-time.After(5 * time.Second):
				t.Fatal("recovery did not finish")
			}
			return nil
		}
		s := open()
		st := s.State()
		var n uint64
		for q := uint64(0); ; q++ {
			m, err := s.LoadNext("", q)
			if err != nil {
				break
			}
			want, ok := base.msgs[m.Seq]
			if crafted && m.Subject == "c" && string(m.Data) == "d" {
				ok, want = true, *m
			}
			if !ok || want.Subject != m.Subject || !bytes.Equal(want.Data, m.Data) {
				t.Fatalf("recovered seq %d %q %q: never written", m.Seq, m.Subject, m.Data)
			}
			n++
			q = m.Seq
		}
		if n != st.Msgs || st.LastSeq > MaxSeq || st.FirstSeq == 0 {
			t.Fatalf("state %+v, walked %d messages", st, n)
		}
		if st.LastSeq < MaxSeq {
			done := make(chan error, 1)
			seq, err := s.Append("new", nil, []byte("y"), 0, func(_ uint64, err error) { done <- err })
			if err != nil || seq != st.LastSeq+1 {
				t.Fatalf("append after recovery: seq %d err %v (last %d)", seq, err, st.LastSeq)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if m, err := s.Load(seq); err != nil || string(m.Data) != "y" {
				t.Fatalf("load appended: %v %v", m, err)
			}
			st = s.State()
		}
		s.Close()
		if again := open().State(); again.Msgs != st.Msgs || again.LastSeq != st.LastSeq || again.FirstSeq != st.FirstSeq {
			t.Fatalf("reopened %+v, want %+v", again, st)
		}
	})
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
