//! Simulated acquisitions: grids, exactness on signals with known answers, serialisation.

use std::f64::consts::PI;

use mrisr::Volume;
use mrisr::degrade::{Degradation, SliceProfile, coarsened_geometry, gaussian_blur};
use mrisr::resample::Method;

use crate::support::fill;

fn oblique(dims: [usize; 3]) -> Volume {
    let mut v = Volume::zeros(dims, [1.0; 3]);
    v.affine = [
        [0.0, 0.3, 1.4, -10.0],
        [0.5, 0.0, 0.2, 20.0],
        [0.1, -0.6, 0.0, 3.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    v.spacing = Volume::spacing_from_affine(&v.affine);
    v
}
#[test]
fn coarsened_geometry_inverts_refined_geometry() {
    let v = oblique([12, 9, 10]);
    let f = [2, 3, 5];
    let c = coarsened_geometry(&v, f);
    assert_eq!(c.dims, [6, 3, 2]);
    for (a, &fa) in f.iter().enumerate() {
        assert!((c.spacing[a] - v.spacing[a] * fa as f64).abs() < 1e-12);
    }
    let back = c.refined_geometry(f);
    assert_eq!(back.dims, v.dims);
    for r in 0..4 {
        for col in 0..4 {
            assert!((back.affine[r][col] - v.affine[r][col]).abs() < 1e-12);
        }
    }
    // Coarse voxel 0 is centred on the mean of the fine voxels it covers.
    let centre = v.world([0.5, 1.0, 2.0]);
    let w = c.world([0.0, 0.0, 0.0]);
    for a in 0..3 {
        assert!((centre[a] - w[a]).abs() < 1e-12);
    }
}

/// A cosine below the coarse Nyquist frequency, truncated in k-space, equals the same cosine
/// sampled at the coarse voxel centres.
#[test]
fn k_space_truncation_samples_band_limited_signal_at_coarse_centres() {
    let dims = [24, 10, 30];
    let f = [2, 1, 3];
    let mut v = oblique(dims);
    let cosine = |i: f64, j: f64, k: f64| {
        100.0
            + 20.0 * (2.0 * PI * 3.0 * i / 24.0 + 0.4).cos()
            + 7.0 * (2.0 * PI * j / 10.0).sin()
            + 11.0 * (2.0 * PI * 4.0 * k / 30.0 - 1.0).cos()
    };
    fill(&mut v, cosine);
    let d = Degradation::KSpaceTruncation { factor: f };
    let low = d.apply(&v);
    assert_eq!(low.dims, [12, 10, 10]);
    assert_eq!(low.affine, coarsened_geometry(&v, f).affine);
    let mut worst = 0.0f64;
    for k in 0..10 {
        for j in 0..10 {
            for i in 0..12 {
                // Coarse voxel l sits at fine index f * l + (f - 1) / 2.
                let fi = 2.0 * i as f64 + 0.5;
                let fk = 3.0 * k as f64 + 1.0;
                let e = (low.get(i, j, k) as f64 - cosine(fi, j as f64, fk)).abs();
                worst = worst.max(e);
            }
        }
    }
    assert!(worst < 2e-3, "max error {worst}");
}

#[test]
fn k_space_truncation_removes_high_frequencies_and_keeps_the_mean() {
    let dims = [32, 4, 4];
    let mut v = Volume::zeros(dims, [1.0; 3]);
    // Alternating +-1 on top of 5: entirely above the coarse band.
    fill(&mut v, |i, _, _| {
        5.0 + if (i as usize).is_multiple_of(2) {
            1.0
        } else {
            -1.0
        }
    });
    let low = Degradation::KSpaceTruncation { factor: [2, 1, 1] }.apply(&v);
    for x in &low.data {
        assert!((x - 5.0).abs() < 1e-4, "{x}");
    }
}

#[test]
fn non_divisible_dims_are_cropped_at_the_end() {
    let mut v = Volume::zeros([11, 4, 7], [0.5, 0.5, 1.0]);
    fill(&mut v, |i, j, k| i + 10.0 * j + 100.0 * k);
    let d = Degradation::ThickSlices {
        factor: [1, 1, 3],
        profile: SliceProfile::Box,
    };
    let low = d.apply(&v);
    assert_eq!(low.dims, [11, 4, 2]);
    assert_eq!(low.spacing, [0.5, 0.5, 3.0]);
    // Slice 1 averages fine slices 3, 4, 5; fine slice 6 is dropped.
    assert!((low.get(2, 1, 1) as f64 - (2.0 + 10.0 + 400.0)).abs() < 1e-3);
    assert!((low.world([0.0, 0.0, 1.0])[2] - 4.0).abs() < 1e-12);
}

#[test]
fn thick_slices_keep_constants_and_linear_ramps() {
    let dims = [6, 5, 40];
    for profile in [SliceProfile::Box, SliceProfile::Gaussian] {
        let mut v = Volume::zeros(dims, [1.0, 1.0, 0.5]);
        fill(&mut v, |_, _, k| 3.0 * k - 7.0);
        let low = Degradation::ThickSlices {
            factor: [1, 1, 4],
            profile,
        }
        .apply(&v);
        assert_eq!(low.dims, [6, 5, 10]);
        // Away from the clamped edges a symmetric profile reproduces a ramp at the centre.
        for l in 2..8 {
            let expected = 3.0 * (4.0 * l as f64 + 1.5) - 7.0;
            assert!(
                (low.get(3, 2, l) as f64 - expected).abs() < 1e-3,
                "{profile:?} slice {l}"
            );
        }
    }
    // The Gaussian profile mixes in neighbouring slices: a single bright thin slice leaks into
    // the next thick slice, unlike the box.
    let mut v = Volume::zeros([1, 1, 16], [1.0; 3]);
    v.set(0, 0, 3, 8.0); // last thin slice of thick slice 0
    let bx = Degradation::ThickSlices {
        factor: [1, 1, 4],
        profile: SliceProfile::Box,
    }
    .apply(&v);
    let ga = Degradation::ThickSlices {
        factor: [1, 1, 4],
        profile: SliceProfile::Gaussian,
    }
    .apply(&v);
    assert_eq!(bx.data, vec![2.0, 0.0, 0.0, 0.0]);
    assert!(ga.data[1] > 0.1 && ga.data[0] > ga.data[1]);
    // Sampling a Gaussian of FWHM f every f slices conserves the total only roughly (aliasing).
    assert!(
        (ga.data.iter().sum::<f32>() - 2.0).abs() < 0.15,
        "{:?}",
        ga.data
    );
}

#[test]
fn gaussian_blur_has_the_requested_width() {
    let mut v = Volume::zeros([3, 201, 2], [1.0, 0.25, 1.0]);
    for i in 0..3 {
        for k in 0..2 {
            v.set(i, 100, k, 1.0);
        }
    }
    let fwhm = 3.0; // mm = 12 voxels of 0.25 mm
    let b = gaussian_blur(&v, 1, fwhm);
    let profile: Vec<f64> = (0..201).map(|j| b.get(1, j, 1) as f64).collect();
    let sum: f64 = profile.iter().sum();
    assert!((sum - 1.0).abs() < 1e-5, "blur keeps the total");
    let var: f64 = profile
        .iter()
        .enumerate()
        .map(|(j, p)| p * (j as f64 - 100.0).powi(2))
        .sum::<f64>()
        / sum;
    let sigma_mm = var.sqrt() * 0.25;
    assert!(
        (sigma_mm * 2.354_820_045 - fwhm).abs() < 0.05,
        "FWHM {}",
        sigma_mm * 2.3548
    );
    // Other axes untouched, grid unchanged.
    assert_eq!(b.dims, v.dims);
    assert_eq!(b.get(1, 100, 0), b.get(1, 100, 1));
}

#[test]
fn degradation_json_is_stable_and_factors_compose() {
    let d = Degradation::Chain {
        steps: vec![
            Degradation::GaussianBlur {
                axis: 2,
                fwhm_mm: 1.0,
            },
            Degradation::ThickSlices {
                factor: [1, 1, 2],
                profile: SliceProfile::Gaussian,
            },
            Degradation::KSpaceTruncation { factor: [2, 1, 1] },
        ],
    };
    let json = serde_json::to_string(&d).unwrap();
    assert!(
        json.contains(r#""kind":"k_space_truncation","factor":[2,1,1]"#),
        "{json}"
    );
    assert!(
        json.contains(r#""kind":"thick_slices","factor":[1,1,2],"profile":"gaussian""#),
        "{json}"
    );
    let back: Degradation = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    assert_eq!(d.factor(), [2, 1, 2]);
    assert_eq!(d.baseline_method(), Method::ZeroFill);
    let defaulted: Degradation =
        serde_json::from_str(r#"{"kind":"thick_slices","factor":[1,1,3]}"#).unwrap();
    assert_eq!(
        defaulted,
        Degradation::ThickSlices {
            factor: [1, 1, 3],
            profile: SliceProfile::Box
        }
    );
    assert_eq!(defaulted.baseline_method(), Method::Cubic);
    let v = oblique([8, 4, 8]);
    assert_eq!(d.apply(&v).dims, [4, 4, 4]);
}

#[test]
fn validate_rejects_what_apply_cannot_do() {
    let d = Degradation::KSpaceTruncation { factor: [1, 1, 4] };
    assert!(d.validate([8, 8, 3]).is_err());
    assert!(d.validate([8, 8, 4]).is_ok());
    assert!(
        Degradation::ThickSlices {
            factor: [0, 1, 1],
            profile: SliceProfile::Box
        }
        .validate([4; 3])
        .is_err()
    );
    assert!(
        Degradation::GaussianBlur {
            axis: 3,
            fwhm_mm: 1.0
        }
        .validate([4; 3])
        .is_err()
    );
    assert!(
        Degradation::GaussianBlur {
            axis: 0,
            fwhm_mm: f64::NAN
        }
        .validate([4; 3])
        .is_err()
    );
    let chain = Degradation::Chain {
        steps: vec![d.clone(), d],
    };
    assert!(
        chain.validate([8, 8, 8]).is_err(),
        "8 / 4 / 4 is less than one voxel"
    );
}
