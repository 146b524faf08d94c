//! Multinomial logistic regression over sparse TF-IDF vectors, trained at
//! start-up by stochastic gradient descent with L2 regularisation. Small on
//! purpose: a few thousand features × a few dozen intents fit in memory, a
//! prediction is one sparse dot product per intent, and training a thousand
//! examples takes milliseconds. Its softmax outputs are probabilities, so
//! Rasa's fallback and ambiguity thresholds keep their meaning.

use super::features::Vector;

/// Passes over the training data.
const EPOCHS: usize = 60;
/// Initial step size; it decays as `1 / (1 + DECAY·epoch)`.
const LEARNING_RATE: f32 = 1.0;
const DECAY: f32 = 0.1;
/// L2 penalty per example step (on the weights an example touches).
const L2: f32 = 1e-5;

pub struct Classifier {
    classes: usize,
    /// `weights[feature * classes + class]`. No bias term on purpose: a
    /// learned intercept is a class prior, and the out-of-scope class has the
    /// most examples, so unfamiliar text would fall to it for that alone.
    weights: Vec<f32>,
}

impl Classifier {
    /// Trains on `(class, vector)` examples; `features` is the vocabulary size.
    pub fn train(examples: &[(usize, Vector)], classes: usize, features: usize) -> Self {
        let mut model = Self {
            classes,
            weights: vec![0.0; features * classes],
        };
        if classes == 0 || examples.is_empty() {
            return model;
        }
        // A fixed shuffle (a linear congruential sequence) keeps start-up
        // deterministic: the same files always give the same model.
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut probabilities = vec![0.0f32; classes];
        for epoch in 0..EPOCHS {
            for i in (1..order.len()).rev() {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                order.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let rate = LEARNING_RATE / (1.0 + DECAY * epoch as f32);
            for &e in &order {
                let (class, x) = &examples[e];
                model.probabilities_into(x, &mut probabilities);
                probabilities[*class] -= 1.0;
                for &(feature, value) in x {
                    let row = &mut model.weights
                        [feature as usize * classes..(feature as usize + 1) * classes];
                    for (w, gradient) in row.iter_mut().zip(&probabilities) {
                        *w -= rate * (gradient * value + L2 * *w);
                    }
                }
            }
        }
        model
    }

    /// Class probabilities (softmax of the scores), in class order.
    pub fn probabilities(&self, x: &Vector) -> Vec<f32> {
        let mut out = vec![0.0; self.classes];
        self.probabilities_into(x, &mut out);
        out
    }

    fn probabilities_into(&self, x: &Vector, out: &mut [f32]) {
        out.fill(0.0);
        for &(feature, value) in x {
            let start = feature as usize * self.classes;
            let Some(row) = self.weights.get(start..start + self.classes) else {
                continue;
            };
            for (score, w) in out.iter_mut().zip(row) {
                *score += w * value;
            }
        }
        let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for score in out.iter_mut() {
            *score = (*score - max).exp();
            total += *score;
        }
        if total > 0.0 {
            for score in out.iter_mut() {
                *score /= total;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_examples_are_learned_with_confidence() {
        // Features 0–1 say class 0, 2–3 say class 1.
        let examples = vec![
            (0, vec![(0, 1.0)]),
            (0, vec![(1, 1.0)]),
            (1, vec![(2, 1.0)]),
            (1, vec![(3, 1.0)]),
        ];
        let model = Classifier::train(&examples, 2, 4);
        let p = model.probabilities(&vec![(0, 0.7), (1, 0.7)]);
        assert!(p[0] > 0.9, "{p:?}");
        let p = model.probabilities(&vec![(3, 1.0)]);
        assert!(p[1] > 0.8, "{p:?}");
        let total: f32 = model.probabilities(&Vec::new()).iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
