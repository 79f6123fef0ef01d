/**
 * A small builder for ONNX graphs on top of the onnx-proto message classes: nodes get unique output names,
 * weights become initializers (optionally stored as float16 behind a Cast), and `encode()` yields the
 * serialised ModelProto bytes.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** An attribute value: numbers are INT when integral unless wrapped with `float()`. */
export type AttrValue = number | number[] | string | { float: number };

/** Marks a number attribute as FLOAT (e.g. `epsilon: float(1e-5)` when the value happens to be integral). */
export function float(value: number): { float: number } {
  return { float: value };
}

/** A symbolic or fixed dimension of a graph input/output. */
export type Dim = number | string;

export interface GraphBuilderOptions {
  /** Store float weights as float16 initializers followed by a Cast to float32. */
  fp16Weights?: boolean;
}

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  private readonly initializers: InstanceType<typeof onnx.TensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly usedNames = new Set<string>();
  private readonly int64Cache = new Map<string, string>();
  private counter = 0;
  /** Number of float weight values stored (for reporting the parameter count). */
  parameterCount = 0;

  constructor(private readonly options: GraphBuilderOptions = {}) {}

  /** A fresh tensor name derived from `hint`. */
  name(hint: string): string {
    let candidate = hint;
    while (this.usedNames.has(candidate)) candidate = `${hint}_${++this.counter}`;
    this.usedNames.add(candidate);
    return candidate;
  }

  input(name: string, dims: Dim[]): string {
    this.usedNames.add(name);
    this.inputs.push(valueInfo(name, dims));
    return name;
  }

  output(name: string, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, dims));
  }

  /** Adds a node with one output and returns the output's name. */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputName?: string): string {
    const out = outputName ?? this.name(`${opType}_${this.nodes.length}`);
    if (outputName) this.usedNames.add(outputName);
    this.nodes.push(
      onnx.NodeProto.create({
        opType,
        name: `${opType}_${this.nodes.length}`,
        input: inputs,
        output: [out],
        attribute: Object.entries(attrs).map(([key, value]) => attribute(key, value)),
      }),
    );
    return out;
  }

  /** A float32 weight; with `fp16Weights` it is stored as float16 and cast back to float32 in the graph. */
  weight(hint: string, data: Float32Array, dims: number[]): string {
    this.parameterCount += data.length;
    if (!this.options.fp16Weights) return this.floatConstant(hint, data, dims);
    const half = toHalfBits(data);
    const stored = this.name(`${hint}.fp16`);
    this.initializers.push(
      onnx.TensorProto.create({ name: stored, dataType: DataType.FLOAT16, dims, rawData: bytesOf(half) }),
    );
    return this.node('Cast', [stored], { to: DataType.FLOAT }, this.name(hint));
  }

  /** A float32 constant that always stays float32 (scalars such as epsilon or 0.5). */
  floatConstant(hint: string, data: Float32Array | number, dims: number[] = []): string {
    const values = typeof data === 'number' ? Float32Array.of(data) : data;
    const name = this.name(hint);
    this.initializers.push(
      onnx.TensorProto.create({ name, dataType: DataType.FLOAT, dims, rawData: bytesOf(values) }),
    );
    return name;
  }

  /** A 1-D int64 constant (shapes, axes), shared between users of the same values. */
  int64s(values: number[]): string {
    const key = values.join(',');
    const cached = this.int64Cache.get(key);
    if (cached) return cached;
    const name = this.name(`const_i64_${key.replaceAll('-', 'm').replaceAll(',', '_')}`);
    this.initializers.push(
      onnx.TensorProto.create({
        name,
        dataType: DataType.INT64,
        dims: [values.length],
        rawData: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
      }),
    );
    this.int64Cache.set(key, name);
    return name;
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  encode(meta: { graphName: string; opset: number; docString?: string; metadata?: Record<string, string> }) {
    // A protobuf message is limited to 2 GiB; bigger models would need ONNX external data, not written here.
    const weightBytes = this.parameterCount * (this.options.fp16Weights ? 2 : 4);
    if (weightBytes > 2 ** 31 - 2 ** 24) {
      throw new Error(
        `${meta.graphName}: ${(weightBytes / 2 ** 30).toFixed(2)} GiB of weights exceed the 2 GiB limit of one .onnx file (try fp16)`,
      );
    }
    const model = onnx.ModelProto.create({
      irVersion: irVersionFor(meta.opset),
      producerName: 'slideseg',
      producerVersion: '0.1.0',
      docString: meta.docString ?? '',
      opsetImport: [{ domain: '', version: meta.opset }],
      metadataProps: Object.entries(meta.metadata ?? {}).map(([key, value]) => ({ key, value })),
      graph: onnx.GraphProto.create({
        name: meta.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      }),
    });
    return onnx.ModelProto.encode(model).finish();
  }
}

/** The lowest IR version that admits the opset (IR 8: opset ≤ 18, IR 9: ≤ 20, IR 10: ≤ 22). */
function irVersionFor(opset: number): number {
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function valueInfo(name: string, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, value: AttrValue) {
  if (typeof value === 'string') {
    return onnx.AttributeProto.create({ name, type: AttrType.STRING, s: new TextEncoder().encode(value) });
  }
  if (Array.isArray(value)) return onnx.AttributeProto.create({ name, type: AttrType.INTS, ints: value });
  if (typeof value === 'object')
    return onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: value.float });
  if (Number.isInteger(value)) return onnx.AttributeProto.create({ name, type: AttrType.INT, i: value });
  return onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: value });
}

/**
 * float32 → float16 bits, round to nearest even (overflow → ±inf, NaN kept), reading the float bits in one pass;
 * io/safetensors' `floatToHalf` does the same per value but allocates on every call, too slow for millions.
 */
export function toHalfBits(data: Float32Array): Uint16Array {
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  const out = new Uint16Array(data.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    const mant = x & 0x7fffff;
    if (exp === 0xff) {
      out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
      continue;
    }
    const e = exp - 127 + 15;
    if (e >= 31) {
      out[i] = sign | 0x7c00;
    } else if (e <= 0) {
      // Subnormal half (or zero): shift the mantissa with its implicit bit, rounding to nearest even.
      if (e < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - e;
      let h = m >>> shift;
      const rem = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      if (rem > halfway || (rem === halfway && h & 1)) h++;
      out[i] = sign | h;
    } else {
      // A carry out of the mantissa correctly bumps the exponent (up to inf).
      let h = (e << 10) | (mant >>> 13);
      const rem = mant & 0x1fff;
      if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
      out[i] = sign | h;
    }
  }
  return out;
}
