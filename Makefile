# vstor — one Makefile for the whole tree.
#
#   make              build build/vstor (installs missing Debian packages first)
#   make check        every test: unit (plain and ASan/UBSan), integration
#   make demo         the main job on a built-in example
#   make bench        side-by-side benchmarks against the peer tools
#   make deps         install the Debian packages building and testing need
#   make format-check the tree matches .clang-format
#   make vm           the test VM of tests/vm/ (build/vm-cache; check needs it)
#
# Variables: CC=clang, WERROR=0 (warnings stay warnings),
# SANITIZE=address,undefined, BUILD=dir (default build).

CC       ?= gcc
BUILD    ?= build
WERROR   ?= 1
SANITIZE ?=
V        ?= 0

# Modules, bottom layer first.  A module with only a README has no sources.
MODULES := common vbd cow imgtools imgtools/formats blkback lvmglue hypervisor

override CPPFLAGS += -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. -I/usr/include/fuse3
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -pthread -Wall -Wextra -Wshadow -Wformat=2 \
	    -Wno-unused-parameter -Wmissing-prototypes -Wstrict-prototypes \
	    -fno-strict-aliasing -MMD -MP
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif
LDLIBS   += -luring -laio -lzstd -lxxhash -lz -lblkid -ldevmapper -ljson-c -lfuse3 -lpthread

ifeq ($(V),0)
Q = @
say = @printf '  %-7s %s\n' $(1) $(2);
else
Q =
say =
endif

LIB_SRCS  := $(foreach m,$(MODULES),$(wildcard $(m)/*.c))
CLI_SRCS  := $(wildcard cli/*.c)
TEST_SRCS := $(wildcard tests/unit/test-*.c)
TOOL_SRCS := $(wildcard tests/tools/*.c)

LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/unit/%)
# Helper programs for the integration tests (not part of the vstor command).
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/tools/%)
LIB       := $(BUILD)/libvstor.a
VSTOR     := $(BUILD)/vstor

.PHONY: all deps check unit unit-asan build-clang tools fuzz man demo bench clean vm \
	format format-check

all: $(VSTOR) man

# Keep the objects of test programs: they are intermediate files to make.
.SECONDARY:

deps:
	$(Q)scripts/deps.sh

# Every compile waits for deps (order-only: deps never forces a rebuild).
$(BUILD)/%.o: %.c | deps
	$(call say,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^

$(VSTOR): $(CLI_OBJS) $(LIB)
	$(call say,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(LDLIBS)

$(BUILD)/tests/unit/%: $(BUILD)/tests/unit/%.o $(LIB)
	$(call say,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/tests/tools/%: $(BUILD)/tests/tools/%.o $(LIB)
	$(call say,LINK,$@)
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

unit: $(TEST_BINS)
tools: $(TOOL_BINS)

# The same unit tests under AddressSanitizer and UBSan, in their own tree,
# and the command and test tools too: hostile-input tests run them.
unit-asan: | deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
		SANITIZE=address,undefined CFLAGS="-O1 -g" unit \
		$(BUILD)/asan/vstor tools

# The whole tree must also build warning-free with clang (its own tree).
build-clang: | deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/clang CC=clang \
		$(BUILD)/clang/vstor unit tools

# The test VM (tests/vm/): a Debian kernel and a busybox initramfs, built
# into $(VSTOR_VM_CACHE) when missing or when tests/vm/ changed.
VSTOR_VM_CACHE ?= $(abspath build/vm-cache)
export VSTOR_VM_CACHE
vm: | deps
	$(call say,VM,$(VSTOR_VM_CACHE))
	$(Q)tests/vm/build.sh >/dev/null

check: format-check all tools fuzz unit unit-asan build-clang vm
	$(Q)VSTOR=$(abspath $(VSTOR)) TOOLS=$(abspath $(BUILD)/tests/tools) \
	 FUZZ=$(abspath $(BUILD)/fuzz) \
	 UNIT_DIRS="$(abspath $(BUILD)/tests/unit) $(abspath $(BUILD)/asan/tests/unit)" \
	 tests/run.sh

# The demo's guests boot the test VM's kernel and initramfs.
demo: all vm
	$(Q)VSTOR=$(abspath $(VSTOR)) scripts/demo.sh

bench: all
	$(Q)VSTOR=$(abspath $(VSTOR)) bench/run-all.sh

# libFuzzer targets, one per parser of untrusted input, built with clang
# whatever CC is.  The library is compiled once with coverage and
# sanitizers into its own archive (fuzz/libvstor-fuzz.a), and each target
# links what it uses from it, rather than compiling the library again per
# target.
FUZZ_CC     ?= clang
FUZZ_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter \
	-MMD -MP
FUZZ_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
FUZZ_LIB    := $(BUILD)/fuzz/libvstor-fuzz.a
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz-*.c))
fuzz: $(FUZZ_BINS)
$(BUILD)/fuzz/obj/%.o: %.c | deps
	$(call say,FUZZCC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) \
		-fsanitize=fuzzer-no-link,address,undefined -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_OBJS)
	$(call say,AR,$@)
	$(Q)rm -f $@
	$(Q)ar rcs $@ $^
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) | deps
	$(call say,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) \
		-fsanitize=fuzzer,address,undefined -MF $(BUILD)/fuzz/obj/$(*F).d \
		-o $@ $< $(FUZZ_LIB) $(LDLIBS)

# Man pages: docs/*.pod rendered with pod2man (as nbdkit does).
MAN_PODS  := $(wildcard docs/*.pod)
MAN_PAGES := $(MAN_PODS:docs/%.pod=$(BUILD)/man/%.1)
man: $(MAN_PAGES)
$(BUILD)/man/%.1: docs/%.pod
	$(call say,POD2MAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)podchecker -warnings $< >$@.log 2>&1 || { cat $@.log; exit 1; }
	$(Q)pod2man --section=1 --center="vstor" --release="vstor" --name="$(*F)" $< >$@

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRCS)
format-check: | deps
	$(Q)clang-format --dry-run -Werror $(FORMAT_SRCS) || \
		{ echo "make format-check: run 'make format'" >&2; exit 1; }

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(CLI_OBJS:.o=.d) $(TEST_BINS:=.d) $(TOOL_BINS:=.d) \
	$(FUZZ_OBJS:.o=.d) $(FUZZ_BINS:$(BUILD)/fuzz/%=$(BUILD)/fuzz/obj/%.d)
