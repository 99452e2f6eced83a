/**
 * The subset of onnx.proto3 (github.com/onnx/onnx, onnx/onnx.proto3) that a small inference
 * graph needs, with the upstream field numbers, so models are written in TypeScript without
 * Python or the onnx package. Fields we never write are left out: protobuf readers skip them.
 */
import protobuf from 'protobufjs';

const ONNX_SUBSET = `
syntax = "proto3";
package onnx;

message AttributeProto {
  enum AttributeType { UNDEFINED = 0; FLOAT = 1; INT = 2; STRING = 3; TENSOR = 4; GRAPH = 5; FLOATS = 6; INTS = 7; STRINGS = 8; }
  string name = 1;
  float f = 2;
  int64 i = 3;
  bytes s = 4;
  TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  repeated bytes strings = 9;
  string doc_string = 13;
  AttributeType type = 20;
}

message ValueInfoProto {
  string name = 1;
  TypeProto type = 2;
  string doc_string = 3;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  string name = 3;
  string op_type = 4;
  repeated AttributeProto attribute = 5;
  string doc_string = 6;
  string domain = 7;
}

message ModelProto {
  int64 ir_version = 1;
  string producer_name = 2;
  string producer_version = 3;
  string domain = 4;
  int64 model_version = 5;
  string doc_string = 6;
  GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
  repeated StringStringEntryProto metadata_props = 14;
}

message StringStringEntryProto {
  string key = 1;
  string value = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  string name = 2;
  repeated TensorProto initializer = 5;
  string doc_string = 10;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
  repeated ValueInfoProto value_info = 13;
}

message TensorProto {
  enum DataType { UNDEFINED = 0; FLOAT = 1; UINT8 = 2; INT8 = 3; UINT16 = 4; INT16 = 5; INT32 = 6; INT64 = 7; STRING = 8; BOOL = 9; FLOAT16 = 10; DOUBLE = 11; }
  repeated int64 dims = 1;
  int32 data_type = 2;
  repeated float float_data = 4 [packed = true];
  repeated int32 int32_data = 5 [packed = true];
  repeated int64 int64_data = 7 [packed = true];
  string name = 8;
  bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  string doc_string = 12;
}

message TensorShapeProto {
  message Dimension {
    oneof value {
      int64 dim_value = 1;
      string dim_param = 2;
    }
    string denotation = 3;
  }
  repeated Dimension dim = 1;
}

message TypeProto {
  message Tensor {
    int32 elem_type = 1;
    TensorShapeProto shape = 2;
  }
  oneof value {
    Tensor tensor_type = 1;
  }
  string denotation = 6;
}

message OperatorSetIdProto {
  string domain = 1;
  int64 version = 2;
}
`;

const root = protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
const ModelProtoType = root.lookupType('onnx.ModelProto');

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, INT64: 7, DOUBLE: 11 } as const;

/** A dimension is a fixed size or a symbolic name (the batch dimension `N`). */
export type Dim = number | string;

export interface TensorInit {
  name: string;
  dims: number[];
  floats?: ArrayLike<number>;
  int64s?: ArrayLike<number>;
}

export interface ValueInfo {
  name: string;
  elemType: number;
  shape: Dim[];
}

export interface NodeInit {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
}

export interface GraphInit {
  name: string;
  doc?: string;
  nodes: NodeInit[];
  initializers: TensorInit[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelInit {
  graph: GraphInit;
  /** ai.onnx opset; 13 has every operator used here in its current form. */
  opset?: number;
  doc?: string;
  metadata?: Record<string, string>;
}

/** ONNX IR version 8 (opset ≤ 17), which every onnxruntime release since 1.10 reads. */
export const IR_VERSION = 8;
export const PRODUCER = 'bunryu-model-server';

function valueInfo(v: ValueInfo) {
  return {
    name: v.name,
    type: {
      tensor_type: {
        elem_type: v.elemType,
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function tensor(t: TensorInit) {
  if (t.floats) return { name: t.name, dims: t.dims, data_type: DataType.FLOAT, float_data: Array.from(t.floats) };
  if (t.int64s) return { name: t.name, dims: t.dims, data_type: DataType.INT64, int64_data: Array.from(t.int64s) };
  throw new Error(`tensor ${t.name} has no data`);
}

/** Serialises a ModelProto: the bytes of a `.onnx` file. Deterministic for the same input. */
export function encodeModel(m: ModelInit): Uint8Array {
  const message = {
    ir_version: IR_VERSION,
    producer_name: PRODUCER,
    producer_version: '1',
    doc_string: m.doc ?? '',
    opset_import: [{ domain: '', version: m.opset ?? 13 }],
    metadata_props: Object.entries(m.metadata ?? {})
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, value]) => ({ key, value })),
    graph: {
      name: m.graph.name,
      doc_string: m.graph.doc ?? '',
      node: m.graph.nodes.map((n, i) => ({ input: n.inputs, output: n.outputs, op_type: n.opType, name: n.name ?? `${n.opType.toLowerCase()}_${i}` })),
      initializer: m.graph.initializers.map(tensor),
      input: m.graph.inputs.map(valueInfo),
      output: m.graph.outputs.map(valueInfo),
    },
  };
  const err = ModelProtoType.verify(message);
  if (err) throw new Error(`invalid ONNX model: ${err}`);
  return ModelProtoType.encode(ModelProtoType.fromObject(message)).finish();
}

/** Decodes a `.onnx` file into a plain object (numbers for int64), for inspection and tests. */
export function decodeModel(bytes: Uint8Array): Record<string, unknown> {
  return ModelProtoType.toObject(ModelProtoType.decode(bytes), { longs: Number, defaults: false, arrays: true }) as Record<string, unknown>;
}
