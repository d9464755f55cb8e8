import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { bytesToHex, hexToBytes } from '@noble/ciphers/utils.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { envelopeSigningBytes, sign, signEnvelope, signingKeyPair, signingKeyPairFromSecretKey, verify, verifyEnvelope } from '../../crypto/sign.js';
import { toBase64 } from '../../crypto/bytes.js';

// RFC 8032 §7.1.
const RFC8032 = [
  {
    name: 'TEST 1',
    secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature: 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secretKey: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature: '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secretKey: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature: '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST SHA(abc)',
    secretKey: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    publicKey: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message: 'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature: 'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];

// Group order L: adding it to S gives the same signature equation but a non-canonical encoding.
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

describe('Ed25519', () => {
  it.each(RFC8032)('RFC 8032 $name', ({ secretKey, publicKey, message, signature }) => {
    const sk = hexToBytes(secretKey);
    const msg = hexToBytes(message);
    expect(bytesToHex(signingKeyPairFromSecretKey(sk).publicKey)).toBe(publicKey);
    expect(bytesToHex(sign(msg, sk))).toBe(signature);
    expect(verify(hexToBytes(signature), msg, hexToBytes(publicKey))).toBe(true);
    expect(verify(hexToBytes(signature), Uint8Array.of(...msg, 0), hexToBytes(publicKey))).toBe(false);
  });

  it('the SHA(abc) vector message is SHA-512("abc")', () => {
    expect(bytesToHex(sha512(new TextEncoder().encode('abc')))).toBe(RFC8032[3]!.message);
  });

  it('matches tweetnacl both ways for random keys and messages', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 200 }), (seed, msg) => {
        const theirs = nacl.sign.keyPair.fromSeed(seed);
        const ours = signingKeyPairFromSecretKey(seed);
        expect(ours.publicKey).toEqual(theirs.publicKey);
        const sig = sign(msg, seed);
        expect(sig).toEqual(nacl.sign.detached(msg, theirs.secretKey));
        expect(nacl.sign.detached.verify(msg, sig, theirs.publicKey)).toBe(true);
        expect(verify(sig, msg, ours.publicKey)).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('rejects any single flipped bit in signature, message or public key, never throwing', () => {
    const { publicKey, secretKey } = signingKeyPair();
    const msg = new TextEncoder().encode('hello');
    const sig = sign(msg, secretKey);
    fc.assert(
      fc.property(fc.constantFrom('signature', 'message', 'publicKey'), fc.nat(), (which, at) => {
        const parts = { signature: sig.slice(), message: msg.slice(), publicKey: publicKey.slice() };
        const target = parts[which];
        const bit = at % (target.length * 8);
        target[bit >> 3]! ^= 1 << (bit & 7);
        expect(verify(parts.signature, parts.message, parts.publicKey)).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('is strict: a non-canonical S (S + L) and small-order keys are refused', () => {
    const { publicKey, secretKey } = signingKeyPair();
    const msg = Uint8Array.of(1, 2, 3);
    const sig = sign(msg, secretKey);
    let s = 0n;
    for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(sig[i]!);
    s += L;
    const malleated = sig.slice();
    for (let i = 32; i < 64; i++, s >>= 8n) malleated[i] = Number(s & 0xffn);
    expect(verify(malleated, msg, publicKey)).toBe(false);
    const identity = hexToBytes('0100000000000000000000000000000000000000000000000000000000000000');
    expect(verify(new Uint8Array(64), msg, identity)).toBe(false);
  });

  it('a signature of the wrong length is false, not an exception', () => {
    const { publicKey } = signingKeyPair();
    expect(verify(new Uint8Array(63), Uint8Array.of(1), publicKey)).toBe(false);
    expect(verify(new Uint8Array(0), Uint8Array.of(1), publicKey)).toBe(false);
  });

  it.each<[string, () => unknown, ErrorConstructor, string]>([
    ['sign message string', () => sign('m' as unknown as Uint8Array, new Uint8Array(32)), TypeError, 'message must be a Uint8Array, got string'],
    ['sign libsodium 64-byte key', () => sign(Uint8Array.of(1), new Uint8Array(64)), RangeError, 'secretKey must be 32 bytes, got 64'],
    ['verify public key 31 bytes', () => verify(new Uint8Array(64), Uint8Array.of(1), new Uint8Array(31)), RangeError, 'publicKey must be 32 bytes, got 31'],
    [
      'verify signature string',
      () => verify('s' as unknown as Uint8Array, Uint8Array.of(1), new Uint8Array(32)),
      TypeError,
      'signature must be a Uint8Array, got string',
    ],
    [
      'verify message null',
      () => verify(new Uint8Array(64), null as unknown as Uint8Array, new Uint8Array(32)),
      TypeError,
      'message must be a Uint8Array, got null',
    ],
    ['signingKeyPairFromSecretKey 31 bytes', () => signingKeyPairFromSecretKey(new Uint8Array(31)), RangeError, 'secretKey must be 32 bytes, got 31'],
  ])('%s throws', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });
});

describe('envelope signatures', () => {
  const { publicKey, secretKey } = signingKeyPair();
  const envelope = {
    v: 1,
    id: 'm-1',
    from: 'agent-a',
    to: 'agent-b',
    channel: 'skynet_core',
    body: { text: 'héllo ✓', n: [1, 2.5, -0, 1e21], nested: { z: true, a: null } },
    signature: null as string | null,
  };
  const CANONICAL =
    '{"body":{"n":[1,2.5,0,1e+21],"nested":{"a":null,"z":true},"text":"héllo ✓"},"channel":"skynet_core","from":"agent-a","id":"m-1","to":"agent-b","v":1}';

  it('signs the UTF-8 canonical JSON without "signature" (known answer with RFC 8032 TEST 1 key)', () => {
    expect(new TextDecoder().decode(envelopeSigningBytes(envelope))).toBe(CANONICAL);
    // Computed with tweetnacl over CANONICAL: any implementation must produce the same.
    const sig = signEnvelope(envelope, hexToBytes(RFC8032[0]!.secretKey));
    expect(sig).toBe('spwZ2MZwoVbabsKod7IQ7yVnrtnRnfXN+m0vArZe1GjD4QazBFk9VBLSdscQpcEGEE4iMpaocS8Z7t908iOSAw==');
    expect(verifyEnvelope({ ...envelope, signature: sig }, hexToBytes(RFC8032[0]!.publicKey))).toBe(true);
  });

  it('round-trips, including through the wire (JSON.stringify / JSON.parse)', () => {
    const signed = { ...envelope, at: new Date(0), signature: signEnvelope({ ...envelope, at: new Date(0) }, secretKey) };
    expect(verifyEnvelope(signed, publicKey)).toBe(true);
    expect(verifyEnvelope(JSON.parse(JSON.stringify(signed)), publicKey)).toBe(true);
  });

  it('does not depend on member order', () => {
    const reversed = Object.fromEntries(Object.entries(envelope).reverse());
    reversed.body = { nested: { a: null, z: true }, n: [1, 2.5, 0, 1e21], text: 'héllo ✓' };
    expect(signEnvelope(reversed, secretKey)).toBe(signEnvelope(envelope, secretKey));
    expect(verifyEnvelope({ ...reversed, signature: signEnvelope(envelope, secretKey) }, publicKey)).toBe(true);
  });

  it('ignores the signature field itself when signing', () => {
    const base = signEnvelope(envelope, secretKey);
    expect(signEnvelope({ ...envelope, signature: 'anything' }, secretKey)).toBe(base);
    const { signature: _drop, ...without } = envelope;
    expect(signEnvelope(without, secretKey)).toBe(base);
  });

  it('any changed, added or removed field makes it false', () => {
    const signed = { ...envelope, signature: signEnvelope(envelope, secretKey) };
    fc.assert(
      fc.property(fc.constantFrom('v', 'id', 'from', 'to', 'channel', 'body'), fc.jsonValue(), (field, value) => {
        fc.pre(JSON.stringify(value) !== JSON.stringify(signed[field as keyof typeof signed]));
        expect(verifyEnvelope({ ...signed, [field]: value }, publicKey)).toBe(false);
      }),
      { numRuns: 40 },
    );
    expect(verifyEnvelope({ ...signed, extra: 1 }, publicKey)).toBe(false);
    const { to: _to, ...removed } = signed;
    expect(verifyEnvelope(removed, publicKey)).toBe(false);
    expect(verifyEnvelope({ ...signed, body: { ...envelope.body, text: 'hello ✓' } }, publicKey)).toBe(false);
  });

  it('a valid signature from another key is false', () => {
    const other = signingKeyPair();
    expect(verifyEnvelope({ ...envelope, signature: signEnvelope(envelope, other.secretKey) }, publicKey)).toBe(false);
  });

  it.each<[string, unknown]>([
    ['missing signature', { v: 1 }],
    ['null signature', { v: 1, signature: null }],
    ['numeric signature', { v: 1, signature: 5 }],
    ['not base64', { v: 1, signature: 'not base64!' }],
    ['too short', { v: 1, signature: toBase64(new Uint8Array(63)) }],
    ['too long', { v: 1, signature: toBase64(new Uint8Array(65)) }],
    ['all zero', { v: 1, signature: toBase64(new Uint8Array(64)) }],
    ['null envelope', null],
    ['string envelope', 'hello'],
    ['array envelope', [1, 2]],
    ['bigint member', { v: 1n, signature: toBase64(new Uint8Array(64)) }],
    ['NaN member', { v: NaN, signature: toBase64(new Uint8Array(64)) }],
  ])('verifyEnvelope is false for %s, never throws', (_name, value) => {
    expect(verifyEnvelope(value, publicKey)).toBe(false);
  });

  it.each<[string, () => unknown, ErrorConstructor, string]>([
    [
      'verifyEnvelope public key string',
      () => verifyEnvelope(envelope, 'pk' as unknown as Uint8Array),
      TypeError,
      'publicKey must be a Uint8Array, got string',
    ],
    ['verifyEnvelope public key 33 bytes', () => verifyEnvelope(envelope, new Uint8Array(33)), RangeError, 'publicKey must be 32 bytes, got 33'],
    ['signEnvelope secret key 31 bytes', () => signEnvelope(envelope, new Uint8Array(31)), RangeError, 'secretKey must be 32 bytes, got 31'],
    ['signEnvelope array', () => signEnvelope([1], new Uint8Array(32)), TypeError, 'envelope must be an object, got array'],
    ['signEnvelope NaN', () => signEnvelope({ n: NaN }, new Uint8Array(32)), RangeError, 'NaN at $.n'],
    ['signEnvelope bigint', () => signEnvelope({ n: 1n }, new Uint8Array(32)), TypeError, 'bigint at $.n'],
  ])('%s throws', (_name, fn, type, message) => {
    expect(fn).toThrow(type);
    expect(fn).toThrow(message);
  });
});
