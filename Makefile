GO ?= go
BIN := bin/evnats

.PHONY: build run test vet unit fuzz-seed bench bench-loops bench-quick clean

build:
	$(GO) build -o $(BIN) ./cmd/evnats

# A useful local server: JetStream-ready data dir, monitoring on 8222.
run: build
	mkdir -p data
	./$(BIN) -p 4222 -m 8222

# vet, race-enabled unit and integration tests (which also run every fuzz
# target over its seed corpus).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...

vet:
	$(GO) vet ./...

clean:
	rm -rf bin
