GO ?= go
BIN := bin/evnats

.PHONY: build run test vet bench bench-quick bench-loops bench-conns microbench screenshot clean

build:
	$(GO) build -o $(BIN) ./cmd/evnats

# A useful local server: JetStream on with its data in ./data, monitoring on 8222.
run: build
	mkdir -p data
	./$(BIN) -p 4222 -m 8222 --mqtt_port 1883 -js -sd ./data

# vet, race-enabled unit and integration tests (which also run every fuzz
# target over its seed corpus).
test: vet
	$(GO) test -race -count=1 -timeout 30m ./...

vet:
	$(GO) vet ./...

# Side-by-side benchmark against nats-server (several minutes; never in CI).
bench:
	$(GO) run ./bench -rounds 5

bench-quick:
	$(GO) run ./bench -quick

bench-loops:
	$(GO) run ./bench -loops-sweep -rounds 3

bench-conns:
	$(GO) run ./bench -conns 10000,50000

# The monitoring page under load in headless Chromium (apt-get install
# chromium); keeps the screenshot the README shows.
screenshot:
	$(GO) test -count=1 -run TestMonitorLivePage ./loop -args -screenshot=$(CURDIR)/docs/monitor.png

# Hot-path micro-benchmarks (parser, sublist, encoders).
microbench:
	$(GO) test -run xxx -bench . -benchmem ./codec ./router

clean:
	rm -rf bin
