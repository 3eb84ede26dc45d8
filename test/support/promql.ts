/**
 * The metric names a PromQL expression reads, found with Prometheus's own grammar (lezer-promql, the
 * parser of Prometheus's web UI): the name of every vector selector, `foo{…}` or `{__name__="foo"}`.
 * Functions, aggregations, keywords and label names are other nodes of the tree, so they never count.
 */
import { parser } from '@prometheus-io/lezer-promql';

/** The metric names `expr` selects, in the order they appear; throws on an expression that does not parse. */
export function metricNames(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  const text = (node: { from: number; to: number }) => expr.slice(node.from, node.to);
  tree.iterate({
    enter(ref) {
      if (ref.type.isError) throw new Error(`not PromQL at ${ref.from}: ${expr.slice(ref.from, ref.from + 40) || '(end)'} in ${expr}`);
      if (ref.name !== 'VectorSelector') return;
      const name = ref.node.getChild('Identifier');
      if (name) names.push(text(name));
      // {__name__="foo"}: the name as an equality matcher.
      for (const matcher of ref.node.getChild('LabelMatchers')?.getChildren('UnquotedLabelMatcher') ?? []) {
        const [label, op, value] = [matcher.getChild('LabelName'), matcher.getChild('MatchOp'), matcher.getChild('StringLiteral')];
        if (label && op && value && text(label) === '__name__' && text(op) === '=') names.push(text(value).slice(1, -1));
      }
    },
  });
  return names;
}
