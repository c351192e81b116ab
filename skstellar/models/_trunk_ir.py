"""The convolutional trunk of a Table-2 network as machine code generated for this CPU.

oneDNN (TensorFlow's CPU library) is poor at convolutions of 1 to 8 channels, which are most
of the arithmetic of these networks (6.5 of their 7.1 million multiply-adds per spectrum at
8669 pixels), and loops left to a compiler's auto-vectoriser (numba) keep their
accumulators in memory: they reached 15-17 GFMA/s per core here. This module writes the
kernel in LLVM IR with explicit SIMD vectors instead (llvmlite, which numba is built on) and
compiles it for the host CPU:

* a block of ``V`` vectors of output pixels of ``F`` filters stays in registers
  (``F * V + V + 1`` of them: accumulators, the input vectors, a broadcast weight) while
  the kernel runs over every input channel and tap, so each tap costs ``V`` loads and ``F``
  broadcasts for ``F * V`` fused multiply-adds;
* the taps are unrolled (the kernel width is a compile-time constant), channels are a loop;
* bias, max pooling (lane shuffles) and the LeakyReLU are applied to the registers before
  the one store of the block;
* every layer's buffer has slack past its last pixel, so blocks never need a scalar tail:
  pixels computed past the end are never read by a valid output.

The kernel also scales the input row (``(x - offset) * inv_scale``) and, for networks with
a linear skip, takes its dot products with the scaled row while it is in registers.
One compiled function serves every member of an ensemble (their weights are arguments);
it is compiled once per process per architecture (~0.5 s) and releases the GIL when called
through ctypes, so chunks of spectra run on threads.
"""

import ctypes
import functools
import math

import numpy as np

__all__ = ["Trunk", "UnsupportedTrunk"]

MAX_BLOCK_VECTORS = 8  # beyond this, a longer block gains nothing and costs compile time


class UnsupportedTrunk(ValueError):
    """The network has a shape this kernel does not generate (a pooling width it cannot block)."""


def _host():
    """Target machine for this CPU, and its SIMD shape: float32 lanes, vector registers."""
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    features = llvm.get_host_cpu_features()
    flat = features.flatten()
    if features.get("avx512f"):
        lanes, regs = 16, 32
        flat += ",-prefer-256-bit"  # LLVM splits 512-bit vectors on these CPUs by default
    elif features.get("avx2") or features.get("avx"):
        lanes, regs = 8, 16
    else:  # SSE, NEON: 4 lanes; AArch64 has 32 vector registers
        lanes, regs = 4, 32 if llvm.get_process_triple().startswith(("aarch64", "arm64")) else 16
    machine = llvm.Target.from_default_triple().create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=flat, opt=3, jit=True)
    return machine, lanes, regs


def block_shape(c_out, pool, lanes, regs):
    """Filters per group ``F`` and vectors per block ``V`` for one convolution.

    The most filters per group whose block of ``V`` vectors (at least 2, at most what the
    registers hold) is a whole number of pooling windows; then the longest such block.
    Raises UnsupportedTrunk when no block fits the pooling width.
    """
    for F in range(min(c_out, (regs - 3) // 2), 0, -1):
        v_max = min(MAX_BLOCK_VECTORS, (regs - 1) // (F + 1))
        fits = [v for v in range(2 if F > 1 else 1, v_max + 1) if v * lanes % pool == 0]
        if fits:
            return F, fits[-1]
    raise UnsupportedTrunk(f"no block of {lanes}-float vectors holds whole pooling windows of {pool} pixels")


class _Builder:
    """llvmlite IR helpers: vector loads and stores, broadcasts, counted loops."""

    def __init__(self, fn, lanes):
        from llvmlite import ir

        self.ir, self.fn, self.lanes = ir, fn, lanes
        self.f32, self.i32, self.i64 = ir.FloatType(), ir.IntType(32), ir.IntType(64)
        self.vec = ir.VectorType(self.f32, lanes)
        # stack slots go to the entry block, where the optimiser turns them into registers
        self.entry = fn.append_basic_block("entry")
        self.b = ir.IRBuilder(fn.append_basic_block("body"))
        self.fma = ir.Function(fn.module, ir.FunctionType(self.vec, [self.vec] * 3), name=f"llvm.fma.v{lanes}f32")

    def slot(self, type_):
        """A stack slot of ``type_`` (a loop-carried value)."""
        return self.ir.IRBuilder(self.entry).alloca(type_)

    def finish(self):
        self.b.ret_void()
        self.ir.IRBuilder(self.entry).branch(self.fn.blocks[1])

    def int(self, value):
        return self.ir.Constant(self.i64, value) if isinstance(value, int) else value

    def at(self, base, *offsets):
        index = self.int(offsets[0])
        for offset in offsets[1:]:
            index = self.b.add(index, self.int(offset))
        return self.b.gep(base, [index])

    def load(self, pointer, width=None):
        vt = self.ir.VectorType(self.f32, width or self.lanes)
        return self.b.load(self.b.bitcast(pointer, vt.as_pointer()), align=4)

    def store(self, value, pointer):
        self.b.store(value, self.b.bitcast(pointer, value.type.as_pointer()), align=4)

    def splat(self, scalar, width=None):
        ir, width = self.ir, width or self.lanes
        vt = ir.VectorType(self.f32, width)
        one = self.b.insert_element(ir.Constant(vt, ir.Undefined), scalar, ir.Constant(self.i32, 0))
        return self.shuffle(one, ir.Constant(vt, ir.Undefined), [0] * width)

    def shuffle(self, a, b, lanes):
        ir = self.ir
        return self.b.shuffle_vector(a, b, ir.Constant(ir.VectorType(self.i32, len(lanes)), list(lanes)))

    def concat(self, vectors):
        """One wide vector of equal-width vectors side by side (undefined lanes after them)."""
        undefined = self.ir.Constant(vectors[0].type, self.ir.Undefined)
        vectors = list(vectors) + [undefined] * ((1 << (len(vectors) - 1).bit_length()) - len(vectors))
        while len(vectors) > 1:
            vectors = [self.shuffle(a, c, range(2 * a.type.count)) for a, c in zip(vectors[::2], vectors[1::2])]
        return vectors[0]

    def maximum(self, a, c):
        return self.b.select(self.b.fcmp_ordered(">", a, c), a, c)

    def loop(self, start, stop, body):
        """``for i in range(start, stop): body(i)`` with ``i`` an i64 value."""
        b = self.b
        counter = self.slot(self.i64)
        b.store(self.int(start), counter)
        head, inner, done = (self.fn.append_basic_block() for _ in range(3))
        b.branch(head)
        b.position_at_end(head)
        i = b.load(counter)
        b.cbranch(b.icmp_signed("<", i, self.int(stop)), inner, done)
        b.position_at_end(inner)
        body(i)
        b.store(b.add(i, self.int(1)), counter)
        b.branch(head)
        b.position_at_end(done)


def _plan(n_features, convs, pool, lanes, regs):
    """Per convolution: its shape, blocks and parameter offsets; the scratch buffers' layout."""
    layers, length, offset = [], n_features, 0
    for i, (c_in, c_out, width) in enumerate(convs):
        P = pool if i < len(convs) - 1 else 1  # Table 2: no pooling after the last convolution
        n_out = (length - width + 1) // P
        if n_out < 1:
            raise UnsupportedTrunk(f"convolution {i} has no output pixel for {n_features} input pixels")
        F, V = block_shape(c_out, P, lanes, regs)
        B = V * lanes
        layers.append(dict(c_in=c_in, c_out=c_out, K=width, P=P, n_out=n_out, F=F, V=V, B=B,
                           n_blocks=math.ceil(n_out * P / B), w_off=offset, b_off=offset + c_in * width * c_out))
        offset += c_in * width * c_out + c_out
        length = n_out
    # buffer i is the input of convolution i (buffer 0 the scaled spectrum), the last one the
    # trunk's output; each row is long enough for what is written to it and read from it
    strides = []
    for i, layer in enumerate(layers):
        read = layer["n_blocks"] * layer["B"] + layer["K"] - 1
        written = n_features if i == 0 else layers[i - 1]["n_blocks"] * layers[i - 1]["B"] // layers[i - 1]["P"]
        strides.append(max(read, written))
    strides.append(layers[-1]["n_blocks"] * layers[-1]["B"])
    strides = [math.ceil(s / lanes) * lanes for s in strides]
    channels = [1] + [layer["c_out"] for layer in layers]
    starts = np.concatenate([[0], np.cumsum(np.multiply(channels, strides))]).astype(int).tolist()
    return layers, strides, starts, offset


def _generate(n_features, convs, pool, slope, n_skip, lanes, regs):
    """LLVM IR of ``trunk(n_rows, X, ld_x, offset, inv_scale, params, skip_w, scratch, feats, skip_out)``,
    and the sizes its caller allocates: scratch floats, convolution parameters, features per row."""
    from llvmlite import ir

    f32 = ir.FloatType()
    fptr, i64 = f32.as_pointer(), ir.IntType(64)
    module = ir.Module(name="skstellar_trunk")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [i64, fptr, i64, fptr, fptr, fptr, fptr, fptr, fptr, fptr]),
                     name="trunk")
    n_rows, X, ld_x, offset, inv_scale, params, skip_w, scratch, feats, skip_out = fn.args
    g = _Builder(fn, lanes)
    b = g.b
    layers, strides, starts, n_params = _plan(n_features, convs, pool, lanes, regs)
    p, n_vec = n_features, n_features // lanes
    last = layers[-1]
    n_flat = last["c_out"] * last["n_out"]
    slope_c = ir.Constant(f32, float(slope))
    skip_acc = [g.slot(g.vec) for _ in range(n_skip)]
    skip_tail = [g.slot(f32) for _ in range(n_skip)]
    blocks = {i: [[g.slot(g.vec) for _ in range(layer["V"])] for _ in range(layer["F"])]
              for i, layer in enumerate(layers)}

    def row(r):
        x_row = b.gep(X, [b.mul(r, ld_x)])
        x0 = g.at(scratch, starts[0])
        for s in range(n_skip):
            b.store(ir.Constant(g.vec, [0.0] * lanes), skip_acc[s])
            b.store(ir.Constant(f32, 0.0), skip_tail[s])

        def scale(i, width, acc):
            load = (lambda ptr: b.load(ptr)) if width == 1 else (lambda ptr: g.load(ptr))
            x = b.fmul(b.fsub(load(g.at(x_row, i)), load(g.at(offset, i))), load(g.at(inv_scale, i)))
            b.store(x, b.bitcast(g.at(x0, i), x.type.as_pointer()), align=4)
            for s in range(n_skip):
                w = load(g.at(skip_w, s * p, i))
                b.store(b.fadd(b.load(acc[s]), b.fmul(x, w)) if width == 1 else
                        b.call(g.fma, [x, w, b.load(acc[s])]), acc[s])

        g.loop(0, n_vec, lambda j: scale(b.mul(j, g.int(lanes)), lanes, skip_acc))
        g.loop(n_vec * lanes, p, lambda i: scale(i, 1, skip_tail))
        for s in range(n_skip):
            vector, total = b.load(skip_acc[s]), b.load(skip_tail[s])
            for lane in range(lanes):
                total = b.fadd(total, b.extract_element(vector, ir.Constant(g.i32, lane)))
            b.store(total, g.at(skip_out, b.mul(r, g.int(n_skip)), s))

        for li, layer in enumerate(layers):
            convolve(li, layer)
        # the trunk's output, channel after channel, into the row of feats
        out, L = g.at(scratch, starts[len(layers)]), last["n_out"]
        f_row = b.gep(feats, [b.mul(r, g.int(n_flat))])
        for c in range(last["c_out"]):
            g.loop(0, L, lambda i, c=c: b.store(b.load(g.at(out, c * strides[-1], i)), g.at(f_row, c * L, i)))

    def convolve(li, layer):
        src, dst = g.at(scratch, starts[li]), g.at(scratch, starts[li + 1])
        s_in, s_out = strides[li], strides[li + 1]
        K, c_out, F, V, B, P = (layer[k] for k in ("K", "c_out", "F", "V", "B", "P"))
        slots = blocks[li]
        for f0 in range(0, c_out, F):
            n_f = min(F, c_out - f0)

            def block(q, f0=f0, n_f=n_f):
                for f in range(n_f):
                    bias = g.splat(b.load(g.at(params, layer["b_off"] + f0 + f)))
                    for v in range(V):
                        b.store(bias, slots[f][v])
                start = b.mul(q, g.int(B))

                def channel(c):
                    x_base = g.at(src, b.mul(c, g.int(s_in)), start)
                    w_base = g.at(params, layer["w_off"] + f0, b.mul(c, g.int(K * c_out)))
                    acc = [[b.load(slots[f][v]) for v in range(V)] for f in range(n_f)]
                    for k in range(K):
                        xs = [g.load(g.at(x_base, k + v * lanes)) for v in range(V)]
                        for f in range(n_f):
                            w = g.splat(b.load(g.at(w_base, k * c_out + f)))
                            for v in range(V):
                                acc[f][v] = b.call(g.fma, [xs[v], w, acc[f][v]])
                    for f in range(n_f):
                        for v in range(V):
                            b.store(acc[f][v], slots[f][v])

                g.loop(0, layer["c_in"], channel)
                out_start = b.mul(q, g.int(B // P))
                for f in range(n_f):
                    vectors = [b.load(slots[f][v]) for v in range(V)]
                    if P > 1:  # max over every P-th lane of the block, P lane offsets
                        wide = g.concat(vectors)
                        pooled = [g.shuffle(wide, wide, range(r, B, P)) for r in range(P)]
                        vectors = [functools.reduce(g.maximum, pooled)]
                    position = 0
                    for m in vectors:
                        w = m.type.count
                        zero = ir.Constant(m.type, [0.0] * w)
                        m = b.select(b.fcmp_ordered(">", m, zero), m, b.fmul(m, g.splat(slope_c, w)))
                        g.store(m, g.at(dst, (f0 + f) * s_out + position, out_start))
                        position += w

            g.loop(0, layer["n_blocks"], block)

    g.loop(0, n_rows, row)
    g.finish()
    return str(module), starts[-1], n_params, n_flat


@functools.lru_cache(maxsize=16)
def _compile(n_features, convs, pool, slope, n_skip, simd):
    import llvmlite.binding as llvm

    machine, lanes, regs = _host()
    lanes, regs = simd or (lanes, regs)
    text, n_scratch, n_params, n_flat = _generate(n_features, convs, pool, slope, n_skip, lanes, regs)
    module = llvm.parse_assembly(text)
    module.verify()
    builder = llvm.create_pass_builder(machine, llvm.create_pipeline_tuning_options(speed_level=3))
    builder.getModulePassManager().run(module, builder)
    engine = llvm.create_mcjit_compiler(module, machine)  # takes the module and the machine
    engine.finalize_object()
    pointer = ctypes.c_void_p
    signature = ctypes.CFUNCTYPE(None, ctypes.c_int64, pointer, ctypes.c_int64, *[pointer] * 7)
    # the engine owns the machine code: it is kept with the function
    return engine, signature(engine.get_function_address("trunk")), n_scratch, n_params, n_flat


class Trunk:
    """The compiled trunk of one network architecture: scaling, convolutions, linear skip.

    Parameters
    ----------
    n_features : int
        Input pixels.
    convs : sequence of (c_in, c_out, kernel_size)
        The convolutions; max pooling of width ``pool`` follows every one but the last, a
        LeakyReLU of slope ``slope`` every one ("valid" padding, as in Table 2).
    pool : int
    slope : float
    n_skip : int
        Outputs of the linear skip (0: none).
    simd : (int, int), optional
        Float32 lanes per vector and vector registers to generate for; default: this CPU's.
        Code for narrower vectors than the CPU's runs too (how the tests check the shapes
        of other CPUs).

    Raises UnsupportedTrunk for a shape the kernel does not generate.
    """

    def __init__(self, n_features, convs, pool, slope, n_skip, simd=None):
        self.n_features = int(n_features)
        self.convs = tuple((int(a), int(c), int(k)) for a, c, k in convs)
        self.n_skip = int(n_skip)
        self._engine, self._function, self.n_scratch, self.n_params, self.n_flat = _compile(
            self.n_features, self.convs, int(pool), float(np.float32(slope)), self.n_skip,
            None if simd is None else tuple(simd))

    def pack(self, kernels, biases):
        """float32 parameters of one network: Keras kernels ``(K, c_in, c_out)`` and biases."""
        parts = []
        for kernel, bias in zip(kernels, biases):
            parts += [np.asarray(kernel, np.float32).transpose(1, 0, 2).ravel(), np.asarray(bias, np.float32)]
        params = np.concatenate(parts)
        if params.size != self.n_params:
            raise ValueError(f"{params.size} convolution parameters for a trunk of {self.n_params}")
        return params

    def __call__(self, X, offset, inv_scale, params, skip, scratch, feats, skip_out):
        """Write the trunk of every row of float32 C-contiguous ``X`` to ``feats`` (and ``skip_out``).

        ``skip`` is the float32 ``(n_skip, n_features)`` matrix of the linear skip (no bias);
        ``scratch`` a float32 buffer of ``n_scratch`` values per concurrent call.
        """
        # the machine code trusts these sizes: a wrong one would write past an array
        n = X.shape[0]
        expected = {"X": (X, (n, self.n_features)), "offset": (offset, (self.n_features,)),
                    "inv_scale": (inv_scale, (self.n_features,)), "params": (params, (self.n_params,)),
                    "scratch": (scratch, (self.n_scratch,)), "feats": (feats, (n, self.n_flat)),
                    "skip_out": (skip_out, (n, self.n_skip))}
        if self.n_skip:
            expected["skip"] = (skip, (self.n_skip, self.n_features))
        for name, (array, shape) in expected.items():
            if array.shape != shape or array.dtype != np.float32 or not array.flags.c_contiguous:
                raise ValueError(f"{name}: expected C-contiguous float32 {shape}, got {array.dtype} {array.shape}")
        pointer = self._address
        self._function(X.shape[0], pointer(X), X.shape[1], pointer(offset), pointer(inv_scale), pointer(params),
                       pointer(skip), pointer(scratch), pointer(feats), pointer(skip_out))

    @staticmethod
    def _address(array):
        return None if array is None else array.ctypes.data
